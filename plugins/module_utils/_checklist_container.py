# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The testing checklist's container checks on one tenant's container (``_checks.ContainerHooks``), through the
engine interface: is it isolated (``_isolation``), and restart it (persistence across a restart)."""

from __future__ import annotations

from typing import Iterable, Optional

from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._isolation import (
    container_problems,
    host_port,
    shared_problems,
)


class ContainerChecks:
    """``isolation()`` and ``restart()`` of one tenant's container."""

    def __init__(
        self, engine, tenant: str, container: str, own_containers: Iterable[str], stop_timeout: int = 30
    ) -> None:
        self.engine = engine
        self.tenant = tenant
        self.container = container
        self.own = set(own_containers) | {container}
        self.stop_timeout = stop_timeout

    def isolation(self) -> list:
        facts = self.engine.container(self.container)
        if facts is None:
            return [f"container {self.container} does not exist"]
        folders = [m["source"] for m in facts.get("mount_details") or [] if m.get("source")]
        ports = [host_port(port) for port in facts.get("published_ports") or [] if host_port(port)]
        owners = {self.tenant: {"containers": self.own, "folders": folders, "ports": ports}}
        return container_problems(facts) + shared_problems(owners, self.engine.listing()).get(self.tenant, [])

    def restart(self) -> Optional[str]:
        try:
            self.engine.restart(self.container, self.stop_timeout)
        except EngineCallError as exc:
            return str(exc)
        return None
