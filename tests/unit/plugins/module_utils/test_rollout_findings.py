# SPDX-License-Identifier: GPL-3.0-or-later
"""The transaction's data-loss findings (issue 24), one test each, on the fake engine with real files.

Findings 9, 10 and 12 are rows of the input tables (test_tenants, test_checks, test_controller), 2, 7 and the lower
snapshot findings are in test_snapshots, the lock findings in test_journal, the HTTP deadline in test_http.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ansible_collections.pinned.release.plugins.module_utils import _rollout_plan
from ansible_collections.pinned.release.plugins.module_utils._drift import compare, parse_expectation
from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._rollout import RolloutError
from ansible_collections.pinned.release.plugins.module_utils._snapshots import SPACE_MARGIN_BYTES
from ansible_collections.pinned.release.plugins.module_utils._tenants import checked_specs, expectation

from .fake_host import BROKEN, SLOW, TENANTS, V1, V2, Host, tenant
from .rollout_harness import ACME, IMPOSSIBLE, Points, on_v1, run_points


def crash_at(host: Host, image: str, point: tuple, **settings) -> None:
    assert run_points(host, image, Points(crash_at=point), **settings) is None, f"never reached {point}"


# ------------------------------------------------------------------ 1. recovery kept or names what users wrote


def test_1_a_crash_after_start_keeps_what_users_wrote_on_a_version_that_is_ready(host):
    on_v1(host)
    crash_at(host, V2, ("journal", "verify", "acme", "after", 1), tenants=ACME)
    host.clock.sleep(60)
    assert host.user_write(3001, "written-after-the-crash", "hours of chats"), "the new version serves users"
    result = host.run(V2, tenants=ACME)
    assert not result.get("failed"), result
    assert "committed, with what users wrote on it" in result["recovered"][0]["outcome"]
    assert host.running("acme") == (V2, "running")
    assert host.read("acme", "written-after-the-crash") == "hours of chats", "rolled forward: the writes are live"
    assert host.read("acme", "sentinel") == "v1-data-acme"
    assert host.audit[-1]["result"] == "recovered: rolled forward (ready and passing its checks after the crash)"


def test_1_a_crash_after_start_of_a_version_failing_its_checks_puts_back_and_names_the_writes(host):
    on_v1(host)
    crash_at(host, V2, ("journal", "verify", "acme", "after", 1), tenants=ACME, smoke_checks=IMPOSSIBLE)
    host.clock.sleep(60)
    assert host.user_write(3001, "written-after-the-crash", "hours of chats")
    result = host.run(V2, tenants=ACME, smoke_checks=IMPOSSIBLE)
    recovered = result["recovered"][0]
    writes = recovered["writes_set_aside"]
    assert writes["count"] >= 1
    assert "kv/written-after-the-crash" in writes["files"], writes
    assert (Path(writes["aside"]) / "kv/written-after-the-crash").read_text() == "hours of chats"
    assert host.running("acme") == (V1, "running")
    assert host.read("acme", "sentinel") == "v1-data-acme"
    assert any(writes["aside"] in w and "changed since" in w for w in result["warnings"]), result["warnings"]
    audit = next(line for line in host.audit if line["result"].startswith("recovered: put back"))
    assert audit["writes_set_aside"]["aside"] == writes["aside"], "the audit line names them too"


def test_1_a_failing_version_that_served_users_names_their_writes_in_the_result(host):
    on_v1(host)
    points = Points(crash_at=None)

    def users_write(label, name, phase):
        if (label, phase) == ("verify", "after"):
            host.clock.sleep(1)  # it is ready: users reach it through nginx while its checks run
            assert host.user_write(3001, "during-the-checks", "a chat")
        points.journal(label, name, phase)

    result = host.rollout(V2, tenants=ACME, smoke_checks=IMPOSSIBLE, failpoint=users_write).execute()
    entry = result["tenants"][0]
    assert "kv/during-the-checks" in entry["writes_set_aside"]["files"]
    assert f"the data it ran on is kept in {entry['writes_set_aside']['aside']}" in result["msg"]


# ------------------------------------------------------------------ 2. a data folder that is a symbolic link


def test_2_a_symlinked_data_folder_is_refused_before_anything_stops(host):
    on_v1(host)
    bigger = host.tmp / "bigdisk" / "acme"
    host.data("acme").rename(bigger.parent.mkdir(parents=True) or bigger)
    host.data("acme").symlink_to(bigger)
    with pytest.raises(RolloutError, match=r"tenant acme: its data folder .* is a symbolic link .*Nothing was changed"):
        host.run(V2, tenants=ACME)
    assert not [c for c in host.engine.calls if c[0] == "stop"]
    assert host.running("acme") == (V1, "running")


# ------------------------------------------------------------------ 3. the restore window


@pytest.mark.parametrize("label", ["restore.extracted", "restore.aside", "restore.placed"])
@pytest.mark.parametrize("phase", ["before", "after"])
def test_3_a_crash_in_the_restore_window_never_brings_the_tenant_back_on_empty_data(host, label, phase):
    on_v1(host)
    assert not host.run(V2, tenants=ACME).get("failed")
    host.write("acme", "written-on-v2", "after-upgrade")
    crash_at(host, V1, ("journal", label, "acme", phase, 1), tenants=ACME, data_mode="restore")
    result = host.run(V2, tenants=ACME)  # the operator gives up on the rollback: back to v2 as it was
    assert not result.get("failed"), result
    assert host.read("acme", "written-on-v2") == "after-upgrade", "back on its own data, not an empty folder"
    assert host.running("acme") == (V2, "running")
    replaced = [a for a in host.tmp.glob("opt/acme/data.replaced-*") if a.is_dir()]
    assert replaced == [], "nothing of the real data is left marked as set aside"


def test_3_a_managed_tenant_whose_data_folder_is_missing_is_refused_not_started_on_an_empty_one(host):
    on_v1(host)
    host.data("acme").rename(host.tmp / "opt/acme/data.moved-by-hand")
    with pytest.raises(
        RolloutError, match=r"its data folder .* is missing although its container openwebui-acme exists"
    ):
        host.run(V2, tenants=ACME)
    assert not host.data("acme").exists()


def test_3_a_container_is_never_created_on_a_data_folder_that_is_not_there(host):
    config = {"name": "x", "image": V1, "env": {}, "labels": {}, "port": (8080, "127.0.0.1", 3999),
              "bind": (str(host.tmp / "absent"), "/app/backend/data"), "restart_policy": "no"}  # fmt: skip
    host.engine.local_images.add(V1)
    with pytest.raises(EngineCallError, match="bind source path does not exist"):
        host.engine.create(config)


# ------------------------------------------------------------------ 4. what leaves the declaration leaves the container


def test_4_a_removed_variable_or_secret_and_a_memory_change_are_drift_and_are_applied(host):
    declared = [tenant("acme", 3001, env={"WEBUI_NAME": "Acme", "OLD_FLAG": "1"},
                       secrets={"WEBUI_SECRET_KEY": "key-of-acme-0123456789", "OLD_TOKEN": "t0ps3cr3t"})]  # fmt: skip
    assert not host.run(V1, tenants=declared).get("failed")
    now = [tenant("acme", 3001, env={"WEBUI_NAME": "Acme"}, memory="512m")]
    plan = host.rollout(V1, tenants=now).plan()
    drift = {d["field"]: d for d in plan["tenants"][0]["drift"]}
    assert plan["tenants"][0]["action"] == "replace"
    assert drift["env.OLD_FLAG"]["actual"] == "set (not declared)"
    assert drift["env.OLD_TOKEN"] == {"field": "env.OLD_TOKEN", "expected": "(not set)", "actual": "set (not declared)"}
    assert "t0ps3cr3t" not in json.dumps(plan), "a removed secret's value is never shown"
    assert drift["memory"] == {"field": "memory", "expected": 512 * 1024**2, "actual": 1024**3}
    assert not host.run(V1, tenants=now).get("failed")
    container = host.engine.by_name("openwebui-acme")
    assert "OLD_FLAG" not in container.env
    assert "OLD_TOKEN" not in container.env
    assert container.memory == 512 * 1024**2
    assert host.rollout(V1, tenants=now).plan()["tenants"][0]["action"] == "none", "and then it is converged"


def test_4_the_images_own_environment_is_not_drift(host):
    host.run(V1, tenants=ACME)
    spec = checked_specs(ACME, host.app, V1)[0]
    facts = host.engine.container("openwebui-acme")
    assert "PATH" in facts["env"]
    assert compare(parse_expectation(expectation(spec), 0), facts) == []


# ------------------------------------------------------------------ 5. no orphan container after a retry


def upgraded_then_slow(host: Host) -> None:
    on_v1(host)
    assert not host.run(V2, tenants=ACME).get("failed")
    assert not host.run(SLOW, tenants=ACME, health_timeout=30).get("failed")


@pytest.mark.parametrize("created", [1, 2])
def test_5_a_crash_right_after_the_daemon_created_a_container_leaves_no_orphan(host, created):
    upgraded_then_slow(host)  # on SLOW: a rollback to V1 tries the current data first, then retries on the restored
    crash_at(host, V1, ("engine", "create", "", "", created), tenants=ACME, data_mode="auto")
    result = host.run(V1, tenants=ACME, data_mode="auto")
    assert not result.get("failed"), result
    assert host.names() == {"openwebui-acme"}
    again = host.run(V2, tenants=ACME)
    assert not again.get("failed"), "later runs are not blocked by a name conflict"


def test_5_a_create_that_timed_out_but_happened_is_found_by_its_name(host):
    on_v1(host)
    host.engine.faults[("create", "openwebui-acme.pinned-next")] = [None]
    original = host.engine.create

    def create_then_time_out(config):
        original(config)
        raise EngineCallError("creating container: Read timed out. (read timeout=60)", "transient")

    host.engine.create = create_then_time_out
    result = host.run(V2, tenants=ACME)
    assert not result.get("failed"), result
    assert host.names() == {"openwebui-acme"}


# ------------------------------------------------------------------ 6. every engine error is one tenant's, never a traceback


def test_6_a_failing_remove_at_commit_leaves_the_tenant_on_the_new_version_and_the_next_run_finishes(host):
    on_v1(host)
    previous = host.engine.by_name("openwebui-acme").id
    host.engine.faults[("remove", previous)] = EngineCallError("removing container: driver failed", "error")
    result = host.run(V2, tenants=ACME)
    assert not result.get("failed"), result
    assert any("finishing its commit failed" in w and "the next run finishes it" in w for w in result["warnings"])
    assert host.running("acme") == (V2, "running")
    host.engine.faults.clear()
    again = host.run(V2, tenants=ACME)
    assert again["recovered"][0]["outcome"] == "finished the interrupted commit"
    assert host.names() == {"openwebui-acme"}


def test_6_an_engine_error_while_looking_at_one_tenant_fails_that_tenant_only(host):
    on_v1(host, TENANTS)
    original = host.engine.container

    def inspect(name, expected=None):
        if name == "openwebui-acme":
            raise EngineCallError("inspecting container openwebui-acme: 500 Server Error", "error")
        return original(name, expected)

    host.engine.container = inspect
    result = host.run(V2, tenants=TENANTS)
    outcomes = {t["name"]: t["outcome"] for t in result["tenants"]}
    assert outcomes == {"acme": "failed", "globex": "replaced"}
    assert "looking at its container failed" in result["msg"]
    status = host.rollout(V2, tenants=TENANTS).status(str(host.tmp / "audit.jsonl"))
    assert status[0]["status"].startswith("unknown (inspecting container openwebui-acme")


def test_6_an_engine_error_while_judging_the_put_back_is_a_standing_not_a_traceback(host):
    on_v1(host)
    original = host.engine.container
    calls = {"n": 0}

    def flaky_after_put_back(name, expected=None):
        if host.journal.load("acme") is not None and host.journal.load("acme").step == "putback":
            calls["n"] += 1
            raise EngineCallError("inspecting: 500 Server Error", "error")
        return original(name, expected)

    host.engine.container = flaky_after_put_back
    result = host.run(BROKEN, tenants=ACME, health_timeout=20)
    assert result["failed"]
    assert calls["n"] > 0
    assert result["tenants"][0]["standing"].startswith("unknown: inspecting its container failed (inspecting: 500")


# ------------------------------------------------------------------ 7. a put-back keeps the data folder's owner and mode


def test_7_a_put_back_keeps_the_owner_and_mode_of_the_data_folder(host):
    on_v1(host)
    os.chown(host.data("acme"), 1000, 1000)
    os.chmod(host.data("acme"), 0o770)  # noqa: S103 - the app's group writes there
    result = host.run(V2, tenants=ACME, smoke_checks=IMPOSSIBLE)
    assert result["tenants"][0]["outcome"] == "put_back"
    stat = host.data("acme").stat()
    assert (stat.st_uid, oct(stat.st_mode & 0o777)) == (1000, "0o770"), "a non-root app can still write"


# ------------------------------------------------------------------ 8. an explicit restore is never silently ignored


def test_8_an_explicit_restore_of_a_tenant_already_on_its_target_is_done(host):
    on_v1(host)
    snapshot = host.run(V2, tenants=ACME)["tenants"][0]["snapshot"]
    host.write("acme", "sentinel", "changed on v2")
    result = host.run(V2, tenants=ACME, restore_snapshots={"acme": snapshot})
    assert result["tenants"][0]["outcome"] == "replaced"
    assert result["tenants"][0]["restored_from"] == snapshot
    assert host.read("acme", "sentinel") == "v1-data-acme"


def test_8_an_explicit_restore_for_a_tenant_not_declared_is_refused(host):
    on_v1(host)
    with pytest.raises(RolloutError, match="restore_snapshots names acmee, which this host does not declare"):
        host.run(V1, tenants=ACME, restore_snapshots={"acmee": "/x.tar.gz"})


# ------------------------------------------------------------------ 11. free space for what a put-back needs


def test_11_the_space_check_counts_the_extraction_a_put_back_would_need(host, monkeypatch):
    on_v1(host)
    (host.data("acme") / "big").write_bytes(b"x" * 400_000)
    monkeypatch.setattr(_rollout_plan, "free_bytes", lambda path: SPACE_MARGIN_BYTES + 600_000)  # the snapshot fits
    with pytest.raises(RolloutError, match=r"acme \(snapshot\) 390\.\d KB, acme \(a put-back's restore\) 390"):
        host.run(V2, tenants=ACME)
    assert not [c for c in host.engine.calls if c[0] == "stop"]


# ------------------------------------------------------------------ 13. Docker racing with itself; a rollback's batch


def test_13_a_remove_that_races_with_the_containers_own_exit_is_retried_not_failed(host):
    on_v1(host)
    previous = host.engine.by_name("openwebui-acme").id
    host.engine.faults[("remove", previous)] = [
        EngineCallError(f"removing container {previous}: Could not kill running container {previous}, cannot "
                        f"remove - Container {previous} is not running", "race")]  # fmt: skip
    result = host.run(V2, tenants=ACME)
    assert not result.get("failed"), result
    assert not result["warnings"], result
    assert host.names() == {"openwebui-acme"}


def test_13_a_stop_of_a_container_that_exited_meanwhile_is_done(host):
    on_v1(host)
    stop = host.engine.stop

    def exited_meanwhile(key, timeout):
        stop(key, timeout)
        raise EngineCallError(f"stopping container {key}: Container {key} is not running", "race")

    host.engine.stop = exited_meanwhile
    assert not host.run(V2, tenants=ACME).get("failed")


def test_13_in_a_rollback_one_tenants_failure_does_not_take_its_batch_mates_back(host):
    on_v1(host, TENANTS)
    assert not host.run(V2, tenants=TENANTS).get("failed")
    host.engine.faults[("start", "openwebui-globex")] = [EngineCallError("starting: driver failed", "error")]
    result = host.run(V1, tenants=TENANTS, data_mode="auto", batch_size=2, failure_scope="tenant")
    outcomes = {t["name"]: t["outcome"] for t in result["tenants"]}
    assert outcomes == {"acme": "replaced", "globex": "put_back"}
    assert host.running("acme") == (V1, "running"), "not put back onto the version rolled away from"
    assert host.running("globex") == (V2, "running")


def test_13_in_a_rollout_a_failure_still_puts_the_whole_batch_back(host):
    on_v1(host, TENANTS)
    host.engine.faults[("start", "openwebui-globex")] = EngineCallError("starting: driver failed", "error")
    result = host.run(V2, tenants=TENANTS, batch_size=2)
    assert {t["outcome"] for t in result["tenants"]} == {"put_back"}


# ------------------------------------------------------------------ 14. a host restart mid-move; a port someone holds


def test_14_a_host_restart_during_the_move_never_starts_the_unverified_version(host):
    on_v1(host)
    crash_at(host, V2, ("journal", "verify", "acme", "after", 1), tenants=ACME, smoke_checks=IMPOSSIBLE)
    assert host.engine.by_name("openwebui-acme").restart_policy == "no"
    host.engine.reboot()
    assert host.engine.by_name("openwebui-acme").status == "exited", "Docker did not start the unverified version"
    result = host.run(V2, tenants=ACME, smoke_checks=IMPOSSIBLE)
    assert host.running("acme") == (V1, "running")
    assert "healthy" in result["recovered"][0]["outcome"]
    assert host.engine.by_name("openwebui-acme").restart_policy == "unless-stopped"


def test_14_a_committed_container_comes_back_after_a_host_restart(host):
    on_v1(host)
    host.engine.reboot()
    assert host.running("acme") == (V1, "running")


def test_14_a_port_held_by_something_else_is_named_with_what_to_do(host):
    on_v1(host)
    host.engine.held_ports[3001] = '127.0.0.1:3001 users:(("docker-proxy",pid=812,fd=4))'
    result = host.run(V2, tenants=ACME)
    assert result["failed"]
    assert ('host port 3001 is held by 127.0.0.1:3001 users:(("docker-proxy",pid=812,fd=4)), not by a container '
            "(a docker-proxy left over from before a Docker or host restart?): stop that process or restart dockerd"
            ) in result["msg"]  # fmt: skip


def test_14_a_port_held_by_another_tenants_container_is_named(host):
    on_v1(host, TENANTS)
    result = host.run(V1, tenants=[tenant("acme", 3002)])  # globex's port; globex is left running, undeclared
    assert "host port 3002 is held by tenant globex's container openwebui-globex" in result["msg"]


# ------------------------------------------------------------------ 15. a put-back interrupted after its data swap


@pytest.mark.parametrize("phase", ["before", "after"])
def test_15_a_put_back_interrupted_after_the_data_swap_does_not_set_the_restored_data_aside_again(host, phase):
    on_v1(host)
    crash_at(host, V2, ("journal", "putback.restore_data.placed", "acme", phase, 1), tenants=ACME,
             smoke_checks=IMPOSSIBLE)  # fmt: skip
    host.run(V2, tenants=ACME, smoke_checks=IMPOSSIBLE)
    failed = [a for a in host.tmp.glob("opt/acme/data.failed-*") if a.is_dir()]
    assert len(failed) == 2, "one per failed attempt: the first put-back's and the re-run's, no more"
    assert all((a / "schema_version").read_text() == "2" for a in failed), "never the restored v1 data"
    assert host.read("acme", "sentinel") == "v1-data-acme"
