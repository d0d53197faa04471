# SPDX-License-Identifier: GPL-3.0-or-later
"""The crash matrix, generated: each scenario is run once to list every point it passes (each journal write, before and
after it, and each change the engine makes); then, for every point, a fresh host dies there - a user writing through
nginx at that moment - and a plain re-run must leave every tenant running its image on its data, with every write a
user made in the live data or in a set-aside folder the result or the audit log names. The double matrix dies a
second time at every point of the re-run's recovery itself."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ansible_collections.pinned.release.plugins.module_utils._rollout_steps import STEP_TABLE, Step, rule_for
from ansible_collections.pinned.release.plugins.module_utils._snapshots import TenantData

from .fake_host import BROKEN, SLOW, TENANTS, V1, V2, Host, tenant
from .rollout_harness import IMPOSSIBLE, Points, on_v1, recovery_points, run_points


def on_v2_after_v1(host: Host, tenants: list) -> None:
    on_v1(host, tenants)
    assert not host.run(V2, tenants=tenants).get("failed")
    for t in tenants:
        host.write(t["name"], "written-on-v2", "after-upgrade")


def on_slow_after_v2(host: Host, tenants: list) -> None:
    on_v2_after_v1(host, tenants)
    assert not host.run(SLOW, tenants=tenants, health_timeout=30).get("failed")


def adoptable(host: Host, tenants: list) -> None:
    volume = host.tmp / "volumes/acme-data/_data"
    (volume / "kv").mkdir(parents=True)
    (volume / "kv/sentinel").write_text("v1-data-acme")
    host.engine.run_by_hand("acme-legacy", V1, str(volume), 3001, env={"WEBUI_SECRET_KEY": "generated"})


ADOPTING = [tenant("acme", 3001, image=V1, adopt_from={"container": "acme-legacy", "data": "@volume"})]


def nothing(host: Host, tenants: list) -> None:
    """A host with no tenant yet."""


def pre_upgrade_snapshot(host: Host) -> dict:
    data = TenantData("acme", str(host.tmp / "opt/acme"))
    return {"restore_snapshots": {"acme": data.rollback_snapshot(V1.split("@")[1])["snapshot"]}}


@dataclass
class Scenario:
    prepare: Callable
    image: str
    tenants: list
    final: object  # the image every tenant runs after the re-run, or {container name: image}
    settings: dict = field(default_factory=dict)
    rerun_fails: bool = False
    more_settings: Callable = lambda host: {}  # settings that need the prepared host (a snapshot's path)
    data_before: bool = True  # each tenant had data before the move (its sentinel must survive)
    # in the double matrix: one scenario per kind of recovery (commit, judged and kept, put back with users' writes,
    # a restore undone, an adoption undone), the others in the single one
    double: bool = False

    def specs(self, host: Host) -> list:
        volume = str(host.tmp / "volumes/acme-data/_data")
        return [{**t, "adopt_from": {**t["adopt_from"], "data": volume}} if t.get("adopt_from") else t
                for t in self.tenants]  # fmt: skip

    def options(self, host: Host) -> dict:
        return {**self.settings, **self.more_settings(host)}

    def finals(self, host: Host) -> dict:
        if isinstance(self.final, dict):
            return self.final
        return {f"openwebui-{t['name']}": self.final for t in self.specs(host)}


SCENARIOS = {
    "upgrade": Scenario(on_v1, V2, TENANTS, V2, {"batch_size": 2}, double=True),
    "failing upgrade": Scenario(on_v1, BROKEN, TENANTS[:1], V1, {"health_timeout": 20}, rerun_fails=True),
    "failing upgrade, a batch of two": Scenario(on_v1, BROKEN, TENANTS, V1, {"health_timeout": 20, "batch_size": 2},
                                                rerun_fails=True),
    # ready, so users write on it, then its smoke checks fail: those writes are set aside and named
    "upgrade failing its checks": Scenario(on_v1, V2, TENANTS[:1], V1, {"smoke_checks": IMPOSSIBLE}, rerun_fails=True, double=True),
    "rollback restoring first": Scenario(on_v2_after_v1, V1, TENANTS, V1,
                                         {"data_mode": "auto", "batch_size": 2, "failure_scope": "tenant"}),
    "rollback retrying on the restored data": Scenario(on_slow_after_v2, V1, TENANTS[:1], V1, {"data_mode": "auto"}),
    "failing rollback restoring first": Scenario(on_v2_after_v1, V1, TENANTS[:1], V2,
                                                 {"data_mode": "restore", "smoke_checks": IMPOSSIBLE}, rerun_fails=True,
                                                 double=True),
    "an explicit restore on the target": Scenario(on_v2_after_v1, V2, TENANTS[:1], V2,
                                                  more_settings=pre_upgrade_snapshot),
    "adoption": Scenario(adoptable, V1, ADOPTING, V1, double=True),
    "failing adoption": Scenario(adoptable, V1, ADOPTING, {"acme-legacy": V1}, {"smoke_checks": IMPOSSIBLE},
                                 rerun_fails=True, data_before=False),
    "a new tenant": Scenario(nothing, V1, TENANTS[:1], V1, data_before=False),
}  # fmt: skip


def _fresh(name: str, root: Path) -> tuple:
    scenario = SCENARIOS[name]
    host = Host(root)
    scenario.prepare(host, scenario.specs(host))
    return scenario, host


def _points(name: str) -> list:
    with tempfile.TemporaryDirectory() as root:
        scenario, host = _fresh(name, Path(root))
        points = Points()
        assert (
            run_points(host, scenario.image, points, tenants=scenario.specs(host), **scenario.options(host)) is not None
        )
        return points.seen


STEP_NAMES = {step.value for step in Step}


def pytest_generate_tests(metafunc):
    """Single crashes at every point; double crashes where the journal enters a step (before and after its write),
    then at every point of the recovery."""
    for argument, keep in (("crash_point", lambda p: True),
                           ("step_point", lambda p: p[0] == "journal" and p[1] in STEP_NAMES)):  # fmt: skip
        names = [n for n in SCENARIOS if SCENARIOS[n].double or argument == "crash_point"]
        if argument in metafunc.fixturenames:
            # sorted: a batch's tenants pass their points from threads, in either order; every worker must collect alike
            cases = sorted({(name, point) for name in names for point in _points(name) if keep(point)})
            ids = [f"{name}-{'-'.join(map(str, point))}" for name, point in cases]
            metafunc.parametrize(("scenario_name", argument), cases, ids=ids)


def crash_then(host: Host, scenario: Scenario, point: tuple, writes: list) -> None:
    """Run the scenario's transaction on ``host`` and die at ``point``, users writing through nginx at that moment."""

    def users_write(at: tuple) -> None:
        for t in scenario.specs(host):
            key = f"during-{len(writes)}-{t['name']}"
            if host.user_write(t["port"], key, str(at)):
                writes.append((t["name"], key, str(at)))

    result = run_points(host, scenario.image, Points(crash_at=point, on_crash=users_write), tenants=scenario.specs(host),
                        **scenario.options(host))  # fmt: skip
    assert result is None, f"the run never reached {point}"


def assert_recovered(host: Host, scenario: Scenario, result: dict, writes: list, where: str) -> None:
    assert bool(result.get("failed")) == scenario.rerun_fails, f"{where}: {result.get('msg')}"
    for name, image in scenario.finals(host).items():
        container = host.engine.by_name(name)
        assert container is not None, f"{where}: no {name}: {host.names()}"
        assert (container.image, container.status) == (image, "running"), f"{where}: {name}: {host.names()}"
    for t in scenario.specs(host) if scenario.data_before else ():
        assert host.read(t["name"], "sentinel") == f"v1-data-{t['name']}", f"{where}: {t['name']} lost its data"
    volume = host.tmp / "volumes/acme-data/_data/kv"  # where a tenant not yet adopted had its users write
    for name, key, value in writes:
        kept = host.kept(name, key, value, result) or ((volume / key).exists() and (volume / key).read_text() == value)
        assert kept, f"{where}: {name}'s write {key} is neither live nor in a named aside"
    assert host.journal.pending() == {}, where
    assert not [n for n in host.names() if ".pinned-" in n], f"{where}: {host.names()}"
    leftovers = [p for p in host.tmp.rglob("*") if p.name.endswith((".tmp", ".adopting")) or "restoring-" in p.name]
    assert not leftovers, f"{where}: {leftovers}"


def test_a_crash_at_any_point_then_a_plain_rerun_recovers(tmp_path, scenario_name, crash_point):
    scenario, host = _fresh(scenario_name, tmp_path)
    writes: list = []
    crash_then(host, scenario, crash_point, writes)
    result = host.run(scenario.image, tenants=scenario.specs(host), **scenario.options(host))
    assert_recovered(host, scenario, result, writes, f"crash at {crash_point}")


def test_a_second_crash_during_the_recovery_then_a_plain_rerun_recovers(tmp_path, scenario_name, step_point):
    crash_point = step_point
    scenario, probe_host = _fresh(scenario_name, tmp_path / "probe")
    crash_then(probe_host, scenario, crash_point, [])
    for index, second in enumerate(recovery_points(probe_host, scenario.image, tenants=scenario.specs(probe_host),
                                                   **scenario.options(probe_host))):  # fmt: skip
        scenario, host = _fresh(scenario_name, tmp_path / f"second-{index}")
        writes: list = []
        crash_then(host, scenario, crash_point, writes)
        recovery = Points(crash_at=second)
        assert (
            run_points(host, scenario.image, recovery, tenants=scenario.specs(host), **scenario.options(host)) is None
        )
        result = host.run(scenario.image, tenants=scenario.specs(host), **scenario.options(host))
        assert_recovered(host, scenario, result, writes, f"crash at {crash_point}, then at {second} in the recovery")


def test_every_point_belongs_to_a_step_of_the_table_and_every_step_is_reached():
    labels = {point[1] for name in SCENARIOS for point in _points(name) if point[0] == "journal"}
    for label in labels:
        assert rule_for(label) in STEP_TABLE, label
    reached = {Step(label.split(".", 1)[0]) for label in labels}
    assert reached == set(Step), f"never crashed in: {set(Step) - reached}"
