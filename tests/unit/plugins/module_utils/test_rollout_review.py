# SPDX-License-Identifier: GPL-3.0-or-later
"""Defects a hostile review of the state machine reproduced on the fake engine, one test each (they failed before the
fix). Its extra crash scenarios (an explicit restore, a failing rollback that restored first, a failing adoption, a new
tenant, a failing batch of two) are in the generated crash matrix."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._rollout import RolloutError

from .fake_host import BROKEN, TENANTS, V1, V2, Host, tenant
from .rollout_harness import ACME, IMPOSSIBLE, Points, on_v1, run_points


def disk_full_once(at: tuple) -> tuple:
    """A failpoint whose journal write at ``at`` fails once with ENOSPC (a full disk), and whether it fired."""
    hit: list = []

    def failpoint(label, tenant_name, phase):
        if (label, tenant_name, phase) == at and not hit:
            hit.append(at)
            raise OSError(errno.ENOSPC, "No space left on device")

    return failpoint, hit


# ------------------------------------------------------------------ 1. a journal write failing during a put-back


@pytest.mark.parametrize("at", [("putback", "acme", "before"), ("putback.remove_new", "acme", "before")])
def test_a_journal_write_failing_in_a_put_back_still_runs_every_undo_step_and_fails_the_run(host, at):
    on_v1(host)
    failpoint, hit = disk_full_once(at)
    result = host.rollout(BROKEN, tenants=ACME, health_timeout=20, failpoint=failpoint).execute()
    assert hit
    assert result.get("failed"), "acme is neither on its target nor quietly back: the run says so"
    assert [t["name"] for t in result["tenants"]] == ["acme"]
    assert host.running("acme") == (V1, "running"), "every undo step ran"
    assert host.read("acme", "sentinel") == "v1-data-acme"


def test_a_journal_write_failing_as_the_commit_begins_still_commits_and_reports(host):
    on_v1(host)
    failpoint, hit = disk_full_once(("commit", "acme", "before"))
    result = host.rollout(V2, tenants=ACME, failpoint=failpoint).execute()
    assert hit
    assert [(t["name"], t["outcome"]) for t in result["tenants"]] == [("acme", "replaced")]
    assert host.engine.by_name("openwebui-acme").restart_policy == "unless-stopped", "a reboot brings it back"


# ------------------------------------------------------------------ 2. a put-back interrupted by a full disk, twice


def test_a_put_back_interrupted_by_a_full_disk_never_brings_the_tenant_back_on_an_empty_folder(host):
    on_v1(host)
    failpoint, hit = disk_full_once(("putback.restore_data.aside", "acme", "before"))
    first = host.rollout(BROKEN, tenants=ACME, health_timeout=20, failpoint=failpoint).execute()
    assert hit
    assert first.get("failed")
    assert not host.data("acme").exists(), "the data is set aside, the extraction not yet in place"
    failpoint, hit = disk_full_once(("putback", "acme", "before"))
    host.clock.sleep(1)
    host.rollout(BROKEN, tenants=ACME, health_timeout=20, failpoint=failpoint).execute()
    assert hit
    host.run(BROKEN, tenants=ACME, health_timeout=20)
    assert host.running("acme") == (V1, "running")
    assert host.read("acme", "sentinel") == "v1-data-acme", "back on its data, not on an empty folder"


# ------------------------------------------------------------------ 3. a put-back that cannot finish


def test_a_previous_container_removed_while_the_deploy_was_dead_does_not_block_the_tenant_forever(host):
    on_v1(host)
    assert run_points(host, V2, Points(crash_at=("journal", "snapshot", "acme", "after", 1)), tenants=ACME) is None
    for container in [c for c in host.engine.containers.values() if c.status != "running"]:
        del host.engine.containers[container.id]  # `docker container prune` by a nightly cron
    first = host.run(V2, tenants=ACME)
    assert "its previous container openwebui-acme is gone" in first["recovered"][0]["outcome"]
    assert host.running("acme") == (V2, "running"), "the run goes on and creates it from its declaration"
    assert host.read("acme", "sentinel") == "v1-data-acme"


def test_a_tenant_crash_looping_before_a_failed_fix_can_still_take_the_next_fix(host):
    on_v1(host)
    (host.data("acme") / "schema_version").write_text("2")  # v1 cannot read its data any more
    host.engine.by_name("openwebui-acme").status = "restarting"
    assert host.run(V2, tenants=ACME, smoke_checks=IMPOSSIBLE).get("failed")
    fixed = host.run(V2, tenants=ACME)
    assert host.running("acme") == (V2, "running"), fixed.get("msg")


# ------------------------------------------------------------------ 4. an inspect timing out while waiting


def inspect_times_out_once(host: Host, armed_at: tuple, nth: int = 1) -> tuple:
    original = host.engine.container
    state = {"armed": False, "calls": 0}

    def container(name, expected=None):
        if state["armed"]:
            state["calls"] += 1
            if state["calls"] == nth:
                raise EngineCallError(f"inspecting container {name}: Read timed out. (read timeout=60)", "transient")
        return original(name, expected)

    def failpoint(label, tenant_name, phase):
        if (label, tenant_name, phase) == armed_at:
            state["armed"] = True

    host.engine.container = container
    return failpoint, state


def test_an_inspect_timing_out_during_the_health_wait_is_waited_through_not_the_whole_runs_end(host):
    on_v1(host, TENANTS)
    failpoint, state = inspect_times_out_once(host, ("verify", "acme", "after"))
    result = host.rollout(V2, tenants=TENANTS, failpoint=failpoint).execute()
    assert state["calls"] >= 1
    assert {(t["name"], t["outcome"]) for t in result["tenants"]} == {("acme", "replaced"), ("globex", "replaced")}


def test_an_inspect_timing_out_while_the_put_back_waits_for_the_previous_still_reports_the_tenant(host):
    on_v1(host)
    failpoint, state = inspect_times_out_once(host, ("putback.start_previous", "acme", "after"), nth=2)
    result = host.rollout(BROKEN, tenants=ACME, health_timeout=20, failpoint=failpoint).execute()
    assert state["calls"] >= 2
    assert result.get("failed")
    assert [t["name"] for t in result["tenants"]] == ["acme"]


# ------------------------------------------------------------------ 5. judging a tenant no longer declared


def test_judging_a_started_tenant_no_longer_declared_commits_it_without_its_files(host):
    on_v1(host, TENANTS)
    assert run_points(host, V2, Points(crash_at=("journal", "verify", "acme", "after", 1)), tenants=TENANTS) is None
    result = host.run(V2, tenants=TENANTS[1:])  # acme left the inventory; the others are deployed
    assert result["recovered"][0]["tenant"] == "acme"
    assert "committed" in result["recovered"][0]["outcome"]
    assert host.running("globex") == (V2, "running")


# ------------------------------------------------------------------ 6. 7. data folders a snapshot or a restore cannot handle


def test_a_named_pipe_in_the_data_folder_is_left_out_of_the_snapshot_so_it_can_be_restored(host):
    on_v1(host)
    os.mkfifo(host.data("acme") / "app.fifo")  # an app's control pipe
    result = host.run(V2, tenants=ACME, smoke_checks=IMPOSSIBLE)  # migrates the data, then fails its checks
    assert result.get("failed")
    assert host.running("acme") == (V1, "running"), result.get("msg")
    assert host.read("acme", "sentinel") == "v1-data-acme"


def test_a_data_folder_that_is_a_mount_point_is_refused_before_anything_stops(host):
    on_v1(host)
    data, keep = host.data("acme"), host.tmp / "copy"
    shutil.copytree(data, keep)
    if subprocess.run(["mount", "-t", "tmpfs", "tenant-disk", str(data)], check=False).returncode:
        pytest.skip("mounting needs root")
    try:
        shutil.copytree(keep, data, dirs_exist_ok=True)
        with pytest.raises(RolloutError, match=r"its data folder .* is a mount point: .*Mount the tenant folder"):
            host.run(V2, tenants=ACME)
        assert not [c for c in host.engine.calls if c[0] == "stop"]
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


# ------------------------------------------------------------------ 10. what a refusal says


def test_a_refusal_that_needs_no_look_at_the_host_comes_before_any_recovery_and_changes_nothing(host):
    on_v1(host)
    assert run_points(host, V2, Points(crash_at=("journal", "verify", "acme", "after", 1)), tenants=ACME,
                      smoke_checks=IMPOSSIBLE) is None  # fmt: skip
    with pytest.raises(RolloutError, match=r"restore_snapshots names acmee, which this host does not declare.*Nothing"):
        host.run(V2, tenants=ACME, smoke_checks=IMPOSSIBLE, restore_snapshots={"acmee": "/x"})
    assert list(host.journal.pending()) == ["acme"], "still to recover, by the corrected run"


def test_a_refusal_after_a_recovery_names_what_the_recovery_did(host):
    on_v1(host, TENANTS)
    assert run_points(host, V2, Points(crash_at=("journal", "verify", "acme", "after", 1)), tenants=TENANTS,
                      smoke_checks=IMPOSSIBLE) is None  # fmt: skip
    elsewhere = host.tmp / "elsewhere"
    elsewhere.mkdir()
    host.engine.remove("openwebui-globex")
    host.engine.run_by_hand("openwebui-globex", V1, str(elsewhere), 3002)  # started by hand on other data
    with pytest.raises(RolloutError) as refused:
        host.run(V2, tenants=TENANTS, smoke_checks=IMPOSSIBLE)
    message = str(refused.value)
    assert "openwebui-globex was started by hand" in message
    assert "Nothing was changed" not in message
    assert "Before that, this run recovered acme: put back" in message


# ------------------------------------------------------------------ secrets


def test_a_rotated_secret_shows_neither_value_in_the_plan_or_the_status(host):
    old = [tenant("acme", 3001, secrets={"WEBUI_SECRET_KEY": "old-s3cret-value-123"})]
    assert not host.run(V1, tenants=old).get("failed")
    rollout = host.rollout(V1, tenants=[tenant("acme", 3001, secrets={"WEBUI_SECRET_KEY": "new-s3cret-value-456"})])
    text = json.dumps(rollout.plan()) + json.dumps(rollout.status(str(host.tmp / "audit.jsonl")))
    assert "old-s3cret-value-123" not in text
    assert "new-s3cret-value-456" not in text
