# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transaction's engine calls: Docker racing with a container's own exit is not a failure, a transient error is
retried a bounded number of times, a call that may have happened although it failed is checked, a taken port is
explained (what holds it, what to do)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._engine import PORT_TAKEN_RE, EngineCallError

ATTEMPTS = 4
PAUSE_SECONDS = 0.25
UNSETTLED = object()  # a failed engine call that did not achieve its aim anyway


class Containers:
    def __init__(self, engine, sleep: Callable, attempts: int = ATTEMPTS, pause: float = PAUSE_SECONDS) -> None:
        self.engine = engine
        self.sleep = sleep
        self.attempts = attempts
        self.pause = pause

    def _again(self, exc: EngineCallError, attempt: int) -> bool:
        if exc.kind in ("race", "transient") and attempt + 1 < self.attempts:
            self.sleep(self.pause * (attempt + 1))
            return True
        return False

    def _retried(self, call: Callable[[], Any], settled: Optional[Callable[[EngineCallError], Any]] = None) -> Any:
        """``call()``, again after a race or a transient error; ``settled(exc)`` returns what a failed call achieved
        anyway (or ``UNSETTLED``), or raises the error the failure really is."""
        for attempt in range(self.attempts):
            try:
                return call()
            except EngineCallError as exc:
                outcome = settled(exc) if settled is not None else UNSETTLED
                if outcome is not UNSETTLED:
                    return outcome
                if not self._again(exc, attempt):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def create(self, config: dict) -> str:
        """The new container's id; a create that failed but happened (a timeout) is found by its name."""

        def created_anyway(exc: EngineCallError) -> Any:
            found = self.engine.container(config["name"]) if exc.kind != "error" else None
            return found["id"] if found is not None and found.get("image") == config["image"] else UNSETTLED

        return self._retried(lambda: self.engine.create(config), created_anyway)

    def stop(self, container: str, timeout: int) -> None:
        """Stopped; a container that exited on its own meanwhile is stopped too."""
        self._retried(
            lambda: self.engine.stop(container, timeout), lambda exc: None if exc.kind == "race" else UNSETTLED
        )

    def remove(self, container: str) -> None:
        """Gone (a container that exited while Docker tried to kill it is removed on the next try)."""
        self._retried(lambda: self.engine.remove(container))

    def rename(self, container: str, new_name: str) -> None:
        def renamed_anyway(exc: EngineCallError) -> Any:
            facts = self.engine.container(container) if exc.kind != "error" else None
            return None if facts is not None and facts["name"] == new_name else UNSETTLED

        self._retried(lambda: self.engine.rename(container, new_name), renamed_anyway)

    def set_restart_policy(self, container: str, policy: str) -> None:
        self._retried(lambda: self.engine.set_restart_policy(container, policy))

    def start(self, container: str, port: int, own: tuple = ()) -> None:
        """Started; a host port held by something else is named with what to do (``own``: this tenant's ids)."""

        def port_taken(exc: EngineCallError) -> Any:
            if PORT_TAKEN_RE.search(str(exc)):
                raise EngineCallError(self.port_holder(port, own), "error") from exc
            return UNSETTLED

        self._retried(lambda: self.engine.start(container), port_taken)

    def port_holder(self, port: int, own: tuple = ()) -> str:
        """What holds host port ``port``, and what to do, in one line."""
        holders = [c for c in self.engine.containers_on_port(port) if c["id"] not in own]
        if holders:
            holder = holders[0]
            tenant = holder["labels"].get("pinned.release.tenant")
            whose = f"tenant {tenant}'s container" if tenant else "container"
            return (f"host port {port} is held by {whose} {holder['name']}: stop or remove it, or give this tenant "
                    "another port, then re-run")  # fmt: skip
        process: Optional[str] = self.engine.port_process(port)
        if process:
            return (f"host port {port} is held by {process}, not by a container (a docker-proxy left over from before "
                    "a Docker or host restart?): stop that process or restart dockerd, then re-run")  # fmt: skip
        return (f"host port {port} is already allocated by Docker though no running container publishes it (a stale "
                f"docker-proxy?): look with `ss -ltnp 'sport = :{port}'`, restart dockerd, then re-run")  # fmt: skip
