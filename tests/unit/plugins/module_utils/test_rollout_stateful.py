# SPDX-License-Identifier: GPL-3.0-or-later
"""Random histories of one host: deploys, rollbacks, crashes at any point, Docker errors, host restarts, users writing
all along. Whatever happened, a plain re-run with no fault leaves every tenant running its declared image, an empty
journal, and every file a user wrote in the live data or in a set-aside folder a result or the audit log named."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from .fake_host import BROKEN, CRASH, SLOW, TENANTS, V1, V2, Host
from .rollout_harness import Points, run_points

# Retention is tested on its own: here nothing is rotated away, so a write can only be lost by a recovery.
KEEP_ALL = {"snapshot_keep": 1000, "aside_keep": 1000, "health_timeout": 20}
VERBS = ("create", "stop", "start", "remove", "rename", "update")


class HostHistory(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="pinned-history-"))
        self.host = Host(self.root)
        self.writes: list = []
        self.results: list = []
        self.keys = itertools.count()  # the points of a batch are passed from several threads

    @initialize()
    def on_v1(self) -> None:
        assert not self.host.run(V1, **KEEP_ALL).get("failed")

    def _users_write_every(self, every: int):
        def write(point: tuple, index: int) -> None:
            if index % every:
                return
            for t in TENANTS:
                key = f"w{next(self.keys)}-{t['name']}"
                if self.host.user_write(t["port"], key, str(point)):
                    self.writes.append((t["name"], key, str(point)))

        return write

    def _run(self, image: str, crash: int, fault, every: int, **kwargs) -> None:
        if fault is not None:
            self.host.engine.injected[fault[0]] = fault[1]
        points = Points(crash_index=crash or None, on_point=self._users_write_every(every))
        result = run_points(self.host, image, points, **KEEP_ALL, **kwargs)
        self.host.engine.injected.clear()
        if result is not None:
            self.results.append(result)
        self.host.clock.sleep(30)  # time passes; users go on writing to whatever serves them

    @rule(image=st.sampled_from([V1, V2, BROKEN, SLOW, CRASH]), crash=st.integers(0, 80),
          fault=st.none() | st.tuples(st.sampled_from(VERBS), st.sampled_from(["race", "transient", "error"])),
          every=st.integers(1, 12), batch=st.sampled_from([1, 2]))  # fmt: skip
    def deploy(self, image, crash, fault, every, batch) -> None:
        self._run(image, crash, fault, every, batch_size=batch)

    @rule(crash=st.integers(0, 80), every=st.integers(1, 12), mode=st.sampled_from(["auto", "restore", "current"]))
    def roll_back(self, crash, every, mode) -> None:
        if mode == "restore" and any(not self.host.data(t["name"]).exists() for t in TENANTS):
            return
        self._run(V1, crash, None, every, data_mode=mode, batch_size=2, failure_scope="tenant")

    @rule()
    def host_restarts(self) -> None:
        self.host.engine.reboot()

    def teardown(self) -> None:
        try:
            result = self.host.run(V2, **KEEP_ALL)  # plain: no crash, no fault; V2 runs on any data
            self.results.append(result)
            assert not result.get("failed"), result.get("msg")
            for t in TENANTS:
                assert self.host.running(t["name"]) == (V2, "running"), (t["name"], self.host.names())
            assert self.host.journal.pending() == {}
            assert not [n for n in self.host.names() if ".pinned-" in n], self.host.names()
            for name, key, value in self.writes:
                assert self.host.kept(name, key, value, *self.results), f"{name}'s write {key} ({value}) was lost"
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# PINNED_HISTORIES=5000 for a longer hunt than the suite's (docs/development.md).
HostHistory.TestCase.settings = settings(max_examples=int(os.environ.get("PINNED_HISTORIES", "60")),
                                         stateful_step_count=8, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
TestHostHistory = HostHistory.TestCase
