# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The testing checklist's container checks on one tenant's container (``_checks.ContainerHooks``), through the
engine interface: is it isolated (judged as drift judges it), restart it (persistence across a restart), its memory.

An engine error in one of them is that check's failure (its outcome says what failed), never the whole checklist's.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from ansible_collections.pinned.release.plugins.module_utils._docker import DockerException
from ansible_collections.pinned.release.plugins.module_utils._drift import Expectation, isolation_drift
from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._isolation import (
    host_port,
    published_parts,
    shared_problems,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import own_containers


def container_entry_problems(entries: object) -> list:
    """run_checklist's ``containers``: tenant_rollout's ``tenants`` result (``name``, ``container``, ``declared``)."""
    if not isinstance(entries, list):
        return [f"containers must be the list tenant_rollout returns as tenants, got {type(entries).__name__}"]
    problems = []
    names = [entry.get("name") for entry in entries if isinstance(entry, dict)]
    twice = sorted({name for name in names if isinstance(name, str) and names.count(name) > 1})
    if twice:
        problems.append(
            f"containers names {', '.join(twice)} more than once: pass tenant_rollout's tenants result as it is"
        )
    for index, entry in enumerate(entries):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not isinstance(entry.get("container"), str)
        ):
            problems.append(f"containers[{index}] must have a tenant name and a container name (text), got {entry!r}")
            continue
        declared = entry.get("declared")
        if declared is None:
            continue  # a tenant no longer declared (finished from its journal): nothing of it to check
        if (
            not isinstance(declared, dict)
            or not isinstance(declared.get("folder"), str)
            or not all(isinstance(declared.get(key), list) for key in ("mounts", "published_ports"))
        ):
            problems.append(f"containers[{index}] ({entry['name']}) lacks declared (folder, mounts, published_ports): "
                            "pass tenant_rollout's tenants result as it is")  # fmt: skip
            continue
        ports = [p for p in declared["published_ports"] if published_parts(p) is None]
        mounts = [m for m in declared["mounts"] if not isinstance(m, str) or ":" not in m]
        if ports or mounts or not str(declared.get("stop_timeout", 30)).isdigit():
            problems.append(f"containers[{index}] ({entry['name']}): declared mounts must be source:destination and "
                            "published_ports ip:host port:container port texts, stop_timeout a number of seconds, got "
                            f"{declared!r}")  # fmt: skip
    return problems


class ContainerChecks:
    """``isolation()``, ``restart()`` and ``memory()`` of one tenant's container, as tenant_rollout declared it."""

    def __init__(self, engine, tenant: str, entry: dict, allowed: Iterable[str] = ()) -> None:
        self.engine = engine
        self.tenant = tenant
        self.container = entry["container"]
        self.declared = entry["declared"]
        self.own = own_containers(self.container)
        self.allowed = set(allowed)  # containers allowed to mount the tenants' folders (a monitoring agent)

    def isolation(self) -> list:
        try:
            facts = self.engine.container(self.container)
            listing = self.engine.listing() if facts is not None else []
        except (EngineCallError, DockerException) as exc:
            return [f"could not look at the containers: {exc}"]
        if facts is None:
            return [f"container {self.container} does not exist"]
        expectation = Expectation(name=self.container, mounts=list(self.declared["mounts"]),
                                  published_ports=list(self.declared["published_ports"]), isolated=True)  # fmt: skip
        ports = [port for port in map(host_port, self.declared["published_ports"]) if port]
        owners = {
            self.tenant: {"containers": self.own | self.allowed, "folders": [self.declared["folder"]], "ports": ports}
        }
        return [d["actual"] for d in isolation_drift(expectation, facts)] + shared_problems(
            owners, listing, os.path.realpath
        ).get(self.tenant, [])

    def restart(self) -> Optional[str]:
        try:
            self.engine.restart(self.container, int(self.declared.get("stop_timeout") or 30))
        except (EngineCallError, DockerException) as exc:
            return f"{exc}; {self._started_again()}"
        return None

    def _started_again(self) -> str:
        """After a failed restart the tenant may be left stopped: start it once, and say where it stands."""
        try:
            self.engine.start(self.container)
        except (EngineCallError, DockerException) as exc:
            return f"starting it again failed too ({exc}): {self.container} may be DOWN, see docker ps -a"
        return f"{self.container} was started again"

    def memory(self) -> tuple:
        try:
            facts = self.engine.container(self.container)
            if facts is None:
                return None, 0, f"container {self.container} does not exist"
            used, most = self.engine.memory_in_use(self.container)
        except (EngineCallError, DockerException) as exc:
            return None, 0, str(exc)
        if used is None:
            return None, 0, f"the engine reports no memory use for {self.container} ({facts.get('status')})"
        return used, int(facts.get("memory") or 0) or most, None
