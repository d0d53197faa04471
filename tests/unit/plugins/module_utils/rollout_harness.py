# SPDX-License-Identifier: GPL-3.0-or-later
"""Crashes at any point of a transaction, for the generated crash matrix and the stateful test.

A point is a journal write (``("journal", label, tenant, phase, n)``: the n-th time that label is written for that
tenant, just before or just after the write) or a change the engine made (``("engine", verb, "", "", n)``: right
after its n-th change of that kind). Every change the transaction makes to disk or containers is followed by one of
them before the next change, so crashing at every point is crashing between any two changes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._rollout import SimulatedCrash

from .fake_host import TENANTS, V1, Host

ACME = TENANTS[:1]
IMPOSSIBLE = [{"name": "a version nobody has", "path": "/api/version", "json": {"version": "9.9.9"}}]  # checks fail


def on_v1(host: Host, tenants: Optional[list] = None) -> None:
    """``tenants`` (ACME) on v1, each with a sentinel file in its data."""
    tenants = ACME if tenants is None else tenants
    assert not host.run(V1, tenants=tenants).get("failed")
    for t in tenants:
        host.write(t["name"], "sentinel", f"v1-data-{t['name']}")


@dataclass
class Points:
    """Records the points a run passes; crashes at ``crash_at``. ``on_crash`` runs first (a user writing then)."""

    crash_at: Optional[tuple] = None
    on_crash: Optional[Callable] = None
    crash_index: Optional[int] = None  # or: die at the n-th point passed, whichever it is
    on_point: Optional[Callable] = None  # at every point, before a crash there (users writing meanwhile)
    seen: list = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def _pass(self, key: tuple) -> None:
        self.counts[key] += 1
        point = (*key, self.counts[key])
        self.seen.append(point)
        if self.on_point is not None:
            self.on_point(point, len(self.seen))
        if point == self.crash_at or len(self.seen) == self.crash_index:
            if self.on_crash is not None:
                self.on_crash(point)
            raise SimulatedCrash(str(point))

    def journal(self, label: str, tenant: str, phase: str) -> None:
        self._pass(("journal", label, tenant, phase))

    def engine(self, verb: str, _key: str) -> None:
        self._pass(("engine", verb, "", ""))


def run_points(host, image: str, points: Points, **kwargs) -> Optional[dict]:
    """Run a transaction with ``points`` watching; the result, or None when it 'crashed'."""
    host.engine.after_change = points.engine
    try:
        host.clock.sleep(1)
        return host.rollout(image, failpoint=points.journal, **kwargs).execute()
    except SimulatedCrash:
        return None
    finally:
        host.engine.after_change = None


def recovery_points(host, image: str, **kwargs) -> list:
    """The points the recovery of a re-run passes (before the run's own moves), without changing anything: found
    on a copy of the host's state by the caller, so here on the host itself and then thrown away with it."""
    points = Points()
    host.engine.after_change = points.engine
    try:
        host.rollout(image, failpoint=points.journal, **kwargs).recover()
    finally:
        host.engine.after_change = None
    return points.seen
