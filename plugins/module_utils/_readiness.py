# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When a container is ready: the one rule the transaction, the drift check, the fleet page and verify_container use.

Docker's side first (fails fast): gone, exited, a crash loop, an unhealthy healthcheck. Then the app's side: when
the app profile names a health path, the app's own answer decides (Docker's healthcheck lags behind by its
interval, so a container Docker still calls ``starting`` whose app answers is ready), and the version it reports
must be the one its image declares. Without a health path, Docker's healthcheck decides.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._checks import dig, run_checks, tenant_address
from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._http import request

POLL_SECONDS = 0.1
PROBE_TIMEOUT = 1.0  # one health request; a slow app is asked again, not waited for


@dataclass(frozen=True)
class AppHealth:
    """How the app says it is ready (from the app profile)."""

    path: Optional[str] = None
    json: dict = field(default_factory=dict)
    version_path: Optional[str] = None
    version_key: str = "version"
    # Neither a health path nor a Docker healthcheck: running is ready (else "no healthcheck" is a failure).
    none_is_ready: bool = True


@dataclass
class Probe:
    """A container whose readiness is judged: a tenant's new container, or a previous one being put back."""

    name: str
    container: str
    port: int = 0
    expected_version: Optional[str] = None
    restarts: Optional[int] = None  # restarts before the wait (None: count from the first look)
    want: str = "healthy"  # or running, or any (verify_container's health)
    ready_at: Optional[float] = None


def container_verdict(facts: Optional[dict], want: str, baseline_restarts: Optional[int] = None) -> Optional[tuple]:
    """Docker's side: ("ok" | "wait" | "fail", why), or None when the app's readiness decides (``want`` healthy)."""
    if facts is None:
        return "fail", "container does not exist"
    if want == "any":
        return "ok", ""
    status = facts["status"]
    if status in ("exited", "dead", "removing"):
        return "fail", f"container {status} (exit code {facts.get('exit_code')})"
    restarts = facts.get("restart_count") or 0
    if baseline_restarts is not None and restarts > baseline_restarts:
        return "fail", f"container is restarting (crash loop: restart count {baseline_restarts} -> {restarts})"
    if status == "restarting":
        return "fail", "container is restarting (crash loop)"
    if status != "running":
        return "wait", f"container is {status}"
    if want == "running":
        return "ok", ""
    if facts["health"] == "unhealthy":
        return "fail", "healthcheck reports unhealthy"
    return None


class Readiness:
    """Judges and waits for containers; one instance per run (``send``, ``clock`` and ``sleep`` are fakes in tests)."""

    def __init__(self, engine, health: AppHealth, send: Callable = request, clock: Callable = time.time,
                 sleep: Callable = time.sleep) -> None:  # fmt: skip
        self.engine = engine
        self.health = health
        self.send = send
        self.clock = clock
        self.sleep = sleep

    def judge(self, facts: Optional[dict], probe: Probe, baseline_restarts: Optional[int] = None,
              docker_healthy_suffices: bool = False) -> tuple:  # fmt: skip
        """("ok" | "wait" | "fail", why) of a container as it is now.

        ``docker_healthy_suffices``: a look at a tenant that runs (drift, the fleet page) takes Docker's "healthy" as
        it is - its healthcheck asked the app a moment ago - and asks the app only while Docker says "starting".
        """
        docker = container_verdict(facts, probe.want, baseline_restarts)
        if docker is not None:
            return docker
        if docker_healthy_suffices and facts["health"] == "healthy":  # type: ignore[index]
            return "ok", ""
        if self.health.path and probe.port:
            return self._app_answers(probe)
        health = facts["health"]  # type: ignore[index]
        if health == "healthy" or (health == "none" and self.health.none_is_ready):
            return "ok", ""
        if health == "none":
            return "fail", "container has no healthcheck: expect health: running for it"
        return "wait", f"health is {health}"

    def _app_answers(self, probe: Probe) -> tuple:
        base = f"http://127.0.0.1:{probe.port}"
        answer = self.send("GET", base + self.health.path, headers={}, body=None, timeout=PROBE_TIMEOUT,
                           server_name=None)  # fmt: skip
        if answer.status != 200:
            return "wait", f"{self.health.path} answers {answer.status if answer.status > 0 else answer.error}"
        if self.health.json:
            try:
                body = json.loads(answer.text)
            except ValueError:
                return "wait", f"{self.health.path} answer is not JSON"
            if any(dig(body, key) != value for key, value in self.health.json.items()):
                return "wait", f"{self.health.path} answers {answer.text[:60]}"
        if probe.expected_version and self.health.version_path:
            version = self.send("GET", base + self.health.version_path, headers={}, body=None, timeout=PROBE_TIMEOUT,
                                server_name=None)  # fmt: skip
            # Only another version fails at once; no answer yet (a busy host, seen at 20 hosts) is waited through.
            where = self.health.version_path
            if version.status != 200:
                return "wait", f"{where} answers {version.status if version.status > 0 else version.error}"
            try:
                actual = dig(json.loads(version.text), self.health.version_key)
            except ValueError:
                return "wait", f"{where} answer is not JSON"
            if actual is None:
                return "wait", f"{where} answers {version.text[:60]} without a version"
            if actual != probe.expected_version:
                return "fail", (f"{self.health.version_path} says version {actual!r}, the image declares "
                                f"{probe.expected_version!r}")  # fmt: skip
        return "ok", ""

    def look(self, probe: Probe, baseline: dict) -> tuple:
        """Inspect the probe's container and judge it; ``baseline`` keeps each probe's first restart count. An inspect
        that fails (dockerd busy, a timeout) is waited through: asked again until the timeout says so."""
        try:
            facts = self.engine.container(probe.container)
        except EngineCallError as exc:  # the engine's own failure is not the container's; the deadline decides
            return "wait", f"inspecting it failed ({' '.join(str(exc).split())[:160]})"
        if facts is None:
            return ("ok", "") if probe.want == "any" else ("fail", "container does not exist")
        restarts = facts.get("restart_count") or 0
        baseline.setdefault(probe.name, restarts if probe.restarts is None else probe.restarts)
        return self.judge(facts, probe, baseline[probe.name])

    def wait(self, probes: list, timeout: float) -> dict:
        """Wait until each probe's container is ready; {name: why} of those that are not (fails fast)."""
        begin = self.clock()
        baseline: dict = {}
        pending = {p.name: p for p in probes}
        failures: dict = {}
        while pending:
            batch = list(pending.items())
            if len(batch) == 1:
                verdicts = [self.look(batch[0][1], baseline)]
            else:  # a batch's containers are looked at side by side: a slow answer from one delays no other
                with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(batch), 8)) as pool:
                    verdicts = list(pool.map(lambda item: self.look(item[1], baseline), batch))
            for (name, probe), (verdict, why) in zip(batch, verdicts):
                if verdict == "ok":
                    probe.ready_at = self.clock()
                    del pending[name]
                elif verdict == "fail":
                    failures[name] = why
                    del pending[name]
            if not pending:
                break
            if self.clock() - begin >= timeout:
                for name, probe in pending.items():
                    failures[name] = (
                        f"not ready after the {timeout:g} s health timeout ({self.look(probe, baseline)[1]})"
                    )
                break
            self.sleep(POLL_SECONDS)
        return failures

    def smoke(self, checks: list, port: int, domain: str, tls: bool, nginx_ports: Optional[tuple]) -> list:
        """The smoke checks of one tenant, through nginx when it is in front (``nginx_ports``: http, https)."""
        if not checks:
            return []
        base, server_name = tenant_address(port, domain, tls, nginx_ports)
        outcomes, _values = run_checks(checks, base, host_header=domain, server_name=server_name, send=self.send)
        return outcomes
