# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When a container is ready.

Fail fast on exit, crash loop or unhealthy; ready once the app answers its health check (and reports
the version its image declares); smoke checks through nginx.
"""

from __future__ import annotations

import concurrent.futures
import json
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._checks import dig, run_checks
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import (
    POLL_SECONDS,
    Move,
    Probe,
)


class ReadinessMixin:
    """The health gate and smoke checks of ``Rollout``."""

    def _probe(self, move: Move) -> Probe:
        # A new container has never restarted: any restart seen is a crash loop.
        return Probe(move.spec["name"], move.record["next"]["id"] or move.spec["container"], move.spec["port"],
                     move.spec["image"], restarts=0)  # fmt: skip

    def wait_ready(self, probes: list, timeout: Optional[float] = None) -> dict:
        """Wait until each probe's container is ready; {name: why} of those that are not (fails fast)."""
        timeout = self.settings.health_timeout if timeout is None else timeout
        begin = self.clock()
        baseline: dict = {}
        pending = {p.name: p for p in probes}
        failures: dict = {}
        while pending:
            batch = list(pending.items())
            if len(batch) == 1:
                verdicts = [self._readiness(batch[0][1], baseline)]
            else:  # a batch's containers are looked at side by side: a slow answer from one delays no other
                with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(batch), 8)) as pool:
                    verdicts = list(pool.map(lambda item: self._readiness(item[1], baseline), batch))
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
                        f"not ready after the {timeout:g} s health timeout ({self._readiness(probe, baseline)[1]})"
                    )
                break
            self.sleep(POLL_SECONDS)
        return failures

    def _wait_moves(self, moves: list) -> dict:
        probes = [self._probe(m) for m in moves]
        failures = self.wait_ready(probes)
        for move, probe in zip(moves, probes):
            if probe.ready_at is not None:
                move.timings["ready"] = probe.ready_at
        return failures

    def _keep_logs(self, move: Move) -> None:
        """The failed container's last log lines (without a line holding a secret), for the result."""
        move.logs = self._logs(move.record["next"]["id"] or move.spec["container"])

    def _logs(self, container: str) -> list:
        raw = self.engine.logs(container, self.settings.log_lines * 3)
        return [line for line in raw.splitlines() if self.mask(line) == line][-self.settings.log_lines :]

    def _readiness(self, probe: Probe, baseline: dict) -> tuple:
        facts = self.engine.container(probe.container)
        if facts is None:
            return "fail", "its container disappeared"
        restarts = facts.get("restart_count") or 0
        baseline.setdefault(probe.name, restarts if probe.restarts is None else probe.restarts)
        if facts["status"] in ("exited", "dead"):
            return "fail", f"container exited (exit code {facts.get('exit_code')})"
        if facts["status"] == "restarting" or restarts > baseline[probe.name]:
            return "fail", "container is restarting (crash loop)"
        if facts["health"] == "unhealthy":
            return "fail", "healthcheck reports unhealthy"
        if facts["status"] != "running":
            return "wait", f"container is {facts['status']}"
        if not self.settings.health_path:
            if facts["health"] in ("healthy", "none"):
                return "ok", ""
            return "wait", f"health is {facts['health']}"
        base = f"http://127.0.0.1:{probe.port}"
        answer = self.send(
            "GET", base + self.settings.health_path, headers={}, body=None, timeout=1.0, server_name=None
        )
        if answer.status != 200:
            return "wait", f"{self.settings.health_path} answers {answer.status if answer.status > 0 else answer.error}"
        if self.settings.health_json:
            try:
                body = json.loads(answer.text)
            except ValueError:
                return "wait", f"{self.settings.health_path} answer is not JSON"
            if any(dig(body, key) != value for key, value in self.settings.health_json.items()):
                return "wait", f"{self.settings.health_path} answers {answer.text[:60]}"
        expected = self._expected_versions.get(probe.image)
        if expected and self.settings.version_path:
            version = self.send("GET", base + self.settings.version_path, headers={}, body=None, timeout=1.0,
                                server_name=None)  # fmt: skip
            try:
                actual = dig(json.loads(version.text), self.settings.version_key)
            except ValueError:
                actual = None
            if actual != expected:
                return "fail", f"{self.settings.version_path} says version {actual!r}, the image declares {expected!r}"
        return "ok", ""

    def smoke_checks(self, spec: dict) -> list:
        if not self.settings.smoke_checks:
            return []
        if self.nginx is None:
            base, server_name = f"http://127.0.0.1:{spec['port']}", None
        elif spec.get("tls_cert"):
            base, server_name = f"https://127.0.0.1:{self.settings.nginx_https_port}", spec["domain"]
        else:
            base, server_name = f"http://127.0.0.1:{self.settings.nginx_http_port}", None
        outcomes, _values = run_checks(self.settings.smoke_checks, base, host_header=spec["domain"],
                                       server_name=server_name, send=self.send)  # fmt: skip
        return outcomes

    def _docker_health_settled(self, container: str) -> Optional[str]:
        """Wait (within the health timeout) for Docker's own healthcheck to leave 'starting'; its status then."""
        deadline = self.clock() + self.settings.health_timeout
        while True:
            facts = self.engine.container(container)
            health = facts["health"] if facts else None
            if health != "starting" or self.clock() >= deadline:
                return health
            self.sleep(POLL_SECONDS * 5)
