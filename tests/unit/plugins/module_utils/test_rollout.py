# SPDX-License-Identifier: GPL-3.0-or-later
"""The release transaction, step by step and fault by fault, on a fake engine (real files, nginx commands stubbed)."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest

from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._rollout import RolloutError, SimulatedCrash
from tests.support.certificates import issue

from .fake_host import BROKEN, CRASH, OTHER_REPO_V1, SLOW, TENANTS, V1, V2, Host, tenant

STEPS = ("create", "stop", "snapshot", "swap", "start", "verify", "commit")


def on_v1_with_data(host: Host) -> None:
    assert not host.run(V1).get("failed")
    for t in TENANTS:
        host.write(t["name"], "sentinel", f"v1-data-{t['name']}")


# ------------------------------------------------------------------ the happy paths


def test_new_tenants_are_created_with_sites_files_and_audit(host):
    result = host.run(V1)
    assert not result.get("failed"), result
    assert [t["outcome"] for t in result["tenants"]] == ["created", "created"]
    assert host.running("acme") == (V1, "running")
    site = Path(host.site_dir, "pinned-release-acme.conf").read_text()
    assert "server_name acme.example;" in site
    assert "proxy_pass http://127.0.0.1:3001;" in site
    assert Path(host.site_dir, "pinned-release-common.conf").exists()
    env = (host.tmp / "opt/acme/app.env").read_text()
    assert "WEBUI_NAME=Acme\n" in env
    assert "key-of-acme" not in env
    assert oct((host.tmp / "opt/acme/secrets.env").stat().st_mode & 0o777) == "0o600"
    assert [a["result"] for a in host.audit] == ["ok", "ok"]
    assert host.journal.pending() == {}
    assert host.names() == {"openwebui-acme", "openwebui-globex"}


def test_a_second_run_changes_nothing(host):
    host.run(V1)
    calls = len(host.engine.calls)
    result = host.run(V1)
    assert result["changed"] is False
    assert [t["outcome"] for t in result["tenants"]] == ["unchanged", "unchanged"]
    assert not [c for c in host.engine.calls[calls:] if c[0] not in ("inspect", "listing")], (
        "a converged host was touched"
    )


def test_the_status_says_the_version_each_tenants_image_declares_in_the_apps_version_label(host):
    label = "org.opencontainers.image.version"
    audit = str(host.tmp / "audit.jsonl")
    assert not host.run(V1).get("failed")
    unchanged = host.rollout(V1, version_label=label)
    assert [t["outcome"] for t in unchanged.execute()["tenants"]] == ["unchanged", "unchanged"]
    assert [t["version"] for t in unchanged.status(audit)] == ["1.0.0", "1.0.0"], "as the run saw them"
    upgrade = host.rollout(V2, version_label=label)
    assert [t["outcome"] for t in upgrade.execute()["tenants"]] == ["replaced", "replaced"]
    assert [t["version"] for t in upgrade.status(audit)] == ["2.0.0", "2.0.0"]
    assert [t["version"] for t in host.rollout(V2).status(audit)] == [None, None], "an app with no version label"


def test_upgrade_snapshots_before_the_replace_migrates_and_keeps_the_data(host):
    on_v1_with_data(host)
    result = host.run(V2)
    assert not result.get("failed"), result
    assert host.running("acme") == (V2, "running")
    assert host.read("acme", "sentinel") == "v1-data-acme"
    assert (host.data("acme") / "schema_version").read_text() == "2"
    entry = result["tenants"][0]
    assert entry["outcome"] == "replaced"
    assert entry["previous_digest"] == V1.split("@")[1]
    meta = json.loads(Path(entry["snapshot"] + ".json").read_text())
    assert (meta["from_digest"], meta["to_digest"]) == (V1.split("@")[1], V2.split("@")[1])
    assert host.names() == {"openwebui-acme", "openwebui-globex"}, "the previous containers are removed at commit"
    assert entry["timings"]["unavailable_s"] > 0


def test_the_new_container_is_created_before_the_old_one_stops(host):
    on_v1_with_data(host)
    start = len(host.engine.calls)
    host.run(V2, tenants=TENANTS[:1])
    verbs = [c for c in host.engine.calls[start:] if c[0] in ("create", "stop", "start")]
    assert [v[0] for v in verbs] == ["create", "stop", "start"]


def test_an_image_missing_on_the_host_is_pulled_before_anything_stops(host):
    on_v1_with_data(host)
    host.engine.faults[("pull", V2)] = EngineCallError("registry down")
    with pytest.raises(RolloutError, match=r"pulling .* failed before any tenant was touched: registry down"):
        host.run(V2)
    assert host.running("acme") == (V1, "running")
    assert not [c for c in host.engine.calls if c[0] == "stop"]


# ------------------------------------------------------------------ failures put the batch back


@pytest.mark.parametrize(
    ("image", "timeout", "why"),
    [
        (BROKEN, 30, "healthcheck reports unhealthy"),
        (CRASH, 30, "container exited (exit code 1)"),
        (SLOW, 3, "not ready after the 3 s health timeout"),
    ],
)
def test_a_failing_target_is_put_back_on_the_exact_previous_container_and_data(host, image, timeout, why):
    on_v1_with_data(host)
    before = host.engine.by_name("openwebui-acme").id
    result = host.run(image, health_timeout=timeout)
    assert result["failed"] is True
    assert why in result["msg"]
    assert "previous image" in result["msg"]
    assert "healthy" in result["msg"]
    acme = result["tenants"][0]
    assert acme["outcome"] == "put_back"
    assert result["tenants"][1]["outcome"] == "not_attempted", "the rollout stops at the failed batch"
    assert host.engine.by_name("openwebui-acme").id == before, "the previous container itself is back"
    assert host.running("acme") == (V1, "running")
    assert host.read("acme", "sentinel") == "v1-data-acme"
    assert host.names() == {"openwebui-acme", "openwebui-globex"}
    assert host.audit[-1]["result"] == "failed, put back"
    assert "healthy" in host.audit[-1]["standing"]
    assert host.journal.pending() == {}


def test_a_failure_after_a_migration_restores_the_snapshot_and_keeps_the_migrated_data_aside(host):
    on_v1_with_data(host)
    impossible = [{"name": "impossible version", "path": "/api/version", "json": {"version": "9.9.9"}}]
    result = host.run(V2, tenants=TENANTS[:1], smoke_checks=impossible)
    assert 'impossible version: JSON \'version\' is "2.0.0", expected "9.9.9"' in result["msg"]
    assert (host.data("acme") / "schema_version").read_text() == "1"
    assert host.running("acme") == (V1, "running")
    asides = [p for p in (host.tmp / "opt/acme").iterdir() if p.name.startswith("data.failed-") and p.is_dir()]
    assert len(asides) == 1
    assert (asides[0] / "schema_version").read_text() == "2"
    assert result["tenants"][0]["failed_data_aside"] == str(asides[0])


def test_a_whole_batch_goes_back_when_one_of_it_fails(host):
    on_v1_with_data(host)
    host.engine.faults[("start", "openwebui-globex")] = [EngineCallError("port is already allocated")]
    result = host.run(V2, batch_size=2)
    assert [t["outcome"] for t in result["tenants"]] == ["put_back", "put_back"]
    assert "put back with its batch (globex failed)" in result["tenants"][0]["failure"]
    assert host.running("acme") == (V1, "running")
    assert host.running("globex") == (V1, "running")


def test_every_put_back_step_runs_even_when_the_restore_fails(host):
    on_v1_with_data(host)
    result = host.run(BROKEN, tenants=TENANTS[:1], health_timeout=30)
    assert result["failed"]
    # again, with the snapshot that would be restored made unreadable
    host.run(V1)

    def corrupt_snapshot(step, name, phase):
        if step == "start" and phase == "after":
            for snap in (host.tmp / "opt/acme/snapshots").glob("*.tar.gz"):
                snap.write_bytes(b"not a tar archive")

    result = host.rollout(BROKEN, tenants=TENANTS[:1], health_timeout=30, failpoint=corrupt_snapshot).execute()
    acme = result["tenants"][0]
    assert any(e.startswith("restore_data: restoring") for e in acme["putback_errors"]), acme
    assert host.running("acme") == (V1, "running"), "the previous image must still be started"
    assert "healthy" in acme["standing"]
    assert host.read("acme", "sentinel") == "v1-data-acme", "back on the data it had (nothing lost)"
    assert host.audit[-1]["result"] == "failed, put back"


def test_a_previous_container_that_cannot_start_is_reported_down_with_the_fix(host):
    on_v1_with_data(host)

    def break_previous(step, name, phase):
        if step == "verify" and phase == "after":
            previous = host.engine.by_name("openwebui-acme.pinned-prev").id
            host.engine.faults[("start", previous)] = EngineCallError("no space left on device")

    result = host.rollout(BROKEN, tenants=TENANTS[:1], health_timeout=30, failpoint=break_previous).execute()
    acme = result["tenants"][0]
    assert acme["standing"].startswith("DOWN: no running container")
    assert "docker start openwebui-acme" in acme["standing"]
    assert "start_previous: no space left on device" in acme["standing"]
    assert "DOWN" in result["msg"]
    assert host.journal.pending(), "a tenant left down keeps its journal for the next run"
    host.engine.faults.clear()
    again = host.run(V1, tenants=TENANTS[:1])
    assert not again.get("failed"), again
    assert host.running("acme") == (V1, "running")
    assert host.journal.pending() == {}


def test_a_previous_container_from_another_repository_is_put_back_as_it_ran(host):
    data = host.data("acme")
    data.mkdir(parents=True)
    host.engine.run_by_hand("openwebui-acme", OTHER_REPO_V1, str(data), 3001, env={"WEBUI_SECRET_KEY": "hand"})
    host.write("acme", "sentinel", "by-hand")
    result = host.run(BROKEN, tenants=TENANTS[:1], health_timeout=30)
    assert result["failed"]
    assert host.running("acme") == (OTHER_REPO_V1, "running")
    env = host.engine.by_name("openwebui-acme").env
    assert (env["WEBUI_SECRET_KEY"], "WEBUI_NAME" in env) == ("hand", False), "its own configuration, as it ran"
    assert result["tenants"][0]["previous_image"] == OTHER_REPO_V1


def test_a_config_change_that_fails_the_gate_brings_the_previous_config_back(host):
    on_v1_with_data(host)
    env_before = (host.tmp / "opt/acme/app.env").read_text()
    changed = [tenant("acme", 3001, env={"WEBUI_NAME": "Broken name"})]
    failing = [{"name": "name", "path": "/api/config", "json": {"name": "Acme"}}]
    result = host.run(V1, tenants=changed, smoke_checks=failing)
    assert result["failed"]
    assert host.engine.by_name("openwebui-acme").env["WEBUI_NAME"] == "Acme"
    assert (host.tmp / "opt/acme/app.env").read_text() == env_before


def test_nginx_rejecting_a_tenant_site_puts_the_tenant_back_and_restores_the_site(host):
    on_v1_with_data(host)
    site = Path(host.site_dir, "pinned-release-acme.conf")
    before = site.read_text()
    host.nginx_test = ["sh", "-c", f"! grep -q 3101 {host.site_dir}/*.conf"]
    result = host.run(V1, tenants=[tenant("acme", 3101)])
    assert result["failed"]
    assert (
        "nginx -t rejected the change (changed or removed file(s) restored: pinned-release-acme.conf)" in result["msg"]
    )
    assert site.read_text() == before
    assert host.running("acme") == (V1, "running")


def test_a_new_site_nginx_rejects_is_removed_and_no_tenant_is_touched(host):
    host.nginx_test = ["sh", "-c", f"! grep -q bad.example {host.site_dir}/*.conf"]
    on_v1_with_data(host)
    result = host.run(V1, tenants=[*TENANTS, tenant("newco", 3003, domain="bad.example")])
    assert result["failed"]
    assert "new file(s) removed: pinned-release-newco.conf" in result["msg"]
    assert not Path(host.site_dir, "pinned-release-newco.conf").exists()
    assert host.running("acme") == (V1, "running")


def test_sites_of_removed_tenants_are_removed(host):
    host.run(V1)
    result = host.run(V1, tenants=TENANTS[:1])
    assert "pinned-release-globex.conf" in result["nginx_changed"]
    assert not Path(host.site_dir, "pinned-release-globex.conf").exists()
    assert any("openwebui-globex" in w for w in result["warnings"]), "its container stays, reported"
    assert host.running("globex") == (V1, "running")


def test_undeclared_containers_are_removed_only_when_asked(host):
    host.run(V1)
    result = host.run(V1, tenants=TENANTS[:1], remove_undeclared=True)
    assert result["removed_undeclared"] == ["openwebui-globex"]
    assert host.running("globex") is None
    assert (host.data("globex")).exists(), "its data stays"


def test_a_host_that_declares_no_tenants_but_runs_managed_containers_is_refused(host):
    host.run(V1)
    with pytest.raises(RolloutError, match="declares no tenants but runs 2 managed container"):
        host.run(V1, tenants=[], remove_undeclared=True)
    assert host.running("acme") == (V1, "running")


def test_not_enough_space_for_the_snapshots_is_refused_before_anything_stops(host, monkeypatch):
    on_v1_with_data(host)
    from ansible_collections.pinned.release.plugins.module_utils import _rollout_plan

    monkeypatch.setattr(_rollout_plan, "free_bytes", lambda path: 1000)
    with pytest.raises(RolloutError, match=r"not enough free space .* need 1\.0 MB .*1000 B free. Nothing was stopped"):
        host.run(V2)
    assert not [c for c in host.engine.calls if c[0] == "stop"]


# ------------------------------------------------------------------ crashes, then a plain re-run


@pytest.mark.parametrize("step", [*STEPS, "putback", "putback.restore_data", "putback.rename_previous"])
@pytest.mark.parametrize("target", [V2, BROKEN])
def test_a_crash_at_any_step_then_a_plain_rerun_leaves_every_tenant_running_with_its_data(host, step, target):
    on_v1_with_data(host)

    def crash(at, name, phase):
        if at == step and name == "acme" and phase == "after":
            raise SimulatedCrash(at)

    try:
        host.rollout(target, failpoint=crash, health_timeout=20).execute()
    except SimulatedCrash:
        pass
    else:
        assert (target == V2 and step.startswith("putback")) or (target, step) == (BROKEN, "commit"), "never reached"
    result = host.run(target, health_timeout=20)
    expected = V2 if target == V2 else V1
    assert host.running("acme") == (expected, "running"), result
    assert host.running("globex") == (expected, "running"), result
    for t in TENANTS:
        assert host.read(t["name"], "sentinel") == f"v1-data-{t['name']}"
    assert host.names() == {"openwebui-acme", "openwebui-globex"}, "no leftover container"
    assert host.journal.pending() == {}
    assert not list((host.tmp / "opt/acme").glob("data.restoring-*"))
    assert not list((host.tmp / "opt/acme/snapshots").glob("*.tmp"))


def test_recovery_finishes_an_interrupted_commit_instead_of_undoing_it(host):
    on_v1_with_data(host)

    def crash(at, name, phase):
        if at == "commit" and phase == "after":
            raise SimulatedCrash(at)

    with pytest.raises(SimulatedCrash):
        host.rollout(V2, tenants=TENANTS[:1], failpoint=crash).execute()
    result = host.run(V2, tenants=TENANTS[:1])
    assert result["recovered"][0]["outcome"] == "finished the interrupted commit"
    assert result["tenants"][0]["outcome"] == "unchanged", "nothing left to do once the commit is finished"
    assert host.audit[-1]["result"] == "recovered: commit finished"


def test_a_crash_during_a_restore_never_leaves_half_restored_data_in_place(host):
    host.run(V1)
    host.write("acme", "sentinel", "v1-data")
    host.run(V2, tenants=TENANTS[:1])
    host.write("acme", "sentinel", "written-on-v2")

    def crash(at, name, phase):
        if at == "swap" and phase == "after":
            raise SimulatedCrash(at)

    with pytest.raises(SimulatedCrash):
        host.rollout(V1, tenants=TENANTS[:1], data_mode="restore", failpoint=crash).execute()
    # The recovery puts v2 back on its own data, not on the restored copy
    result = host.rollout(V2, tenants=TENANTS[:1]).execute()
    assert result["recovered"][0]["step"] == "swap"
    assert host.read("acme", "sentinel") == "written-on-v2"
    assert host.running("acme") == (V2, "running")


# ------------------------------------------------------------------ rollback across a migration


def upgraded_with_writes(host: Host) -> None:
    on_v1_with_data(host)
    assert not host.run(V2).get("failed")
    for t in TENANTS:
        host.write(t["name"], "written-on-v2", "after-upgrade")


@pytest.mark.parametrize("mode", ["auto", "restore"])
def test_rollback_restores_the_data_from_before_the_upgrade_and_keeps_newer_writes_aside(host, mode):
    upgraded_with_writes(host)
    result = host.run(V1, data_mode=mode, batch_size=2)
    assert not result.get("failed"), result
    for t in TENANTS:
        assert host.running(t["name"]) == (V1, "running")
        assert host.read(t["name"], "sentinel") == f"v1-data-{t['name']}"
        assert not (host.data(t["name"]) / "kv/written-on-v2").exists()
        entry = next(e for e in result["tenants"] if e["name"] == t["name"])
        assert "kv/written-on-v2" in entry["lost_writes"]
        assert (Path(entry["set_aside"]) / "kv/written-on-v2").read_text() == "after-upgrade"


def test_rollback_on_current_data_only_fails_and_puts_the_new_version_back(host):
    upgraded_with_writes(host)
    result = host.run(V1, data_mode="current")
    assert result["failed"]
    assert host.running("acme") == (V2, "running")
    assert host.read("acme", "written-on-v2") == "after-upgrade"


def test_restore_without_a_snapshot_from_before_is_refused_before_anything_changes(host):
    host.run(V2)
    with pytest.raises(RolloutError, match="no snapshot taken when it left"):
        host.run(V1, data_mode="restore")
    assert host.running("acme") == (V2, "running")


# ------------------------------------------------------------------ snapshots keep the rollback point


def test_rotation_never_deletes_the_pre_upgrade_snapshot_a_rollback_needs(host):
    upgraded_with_writes(host)
    metas = [json.loads(p.read_text()) for p in (host.tmp / "opt/acme/snapshots").glob("*.json")]
    (pre_upgrade,) = [m for m in metas if (m["from_digest"], m["to_digest"]) == (V1.split("@")[1], V2.split("@")[1])]
    for number in range(4):  # config changes since the upgrade, each with its own snapshot
        host.run(V2, tenants=[tenant("acme", 3001, env={"WEBUI_NAME": f"Acme {number}"})], snapshot_keep=2,
                 protect_digests=(V1.split("@")[1],))  # fmt: skip
    left = [json.loads(p.read_text()) for p in (host.tmp / "opt/acme/snapshots").glob("*.json")]
    assert pre_upgrade["snapshot"] in {m["snapshot"] for m in left}
    assert len(left) == 3, "the newest 2, plus the protected pre-upgrade one"
    result = host.run(V1, tenants=[tenant("acme", 3001, env={"WEBUI_NAME": "Acme 3"})], data_mode="auto")
    assert not result.get("failed"), result
    assert host.read("acme", "sentinel") == "v1-data-acme"


# ------------------------------------------------------------------ check mode


def test_the_plan_names_another_container_that_mounts_a_tenants_folder(host):
    host.run(V1)
    assert host.rollout(V1).plan()["shared"] == {}, "a tenant's own containers share nothing"
    acme_folder = str(host.data("acme").parent)
    host.engine.run_by_hand("backup-tool", V1, acme_folder, 3999)
    assert host.rollout(V1).plan()["shared"] == {
        "acme": [f"container backup-tool mounts {acme_folder}, which is acme's folder"],
    }
    allowed = host.rollout(V1, isolation_allow=("backup-tool",)).plan()
    assert allowed["shared"] == {}, "a container named in isolation_allow is left out"


def test_each_site_logs_to_the_tenants_own_access_log_when_a_folder_is_given(host):
    assert not host.run(V1).get("failed")
    assert "access_log" not in (Path(host.site_dir) / "pinned-release-acme.conf").read_text(), "off unless asked"
    result = host.run(V1, nginx_access_log_dir="/var/log/nginx")
    assert "pinned-release-acme.conf" in result["nginx_changed"], "every site is rewritten once to add its log"
    site = (Path(host.site_dir) / "pinned-release-acme.conf").read_text()
    assert "    access_log /var/log/nginx/pinned-release-acme.access.log;" in site.splitlines()


def test_the_plan_names_a_tenants_certificate_that_expires_too_soon_or_cannot_be_read(host):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = issue("lab CA", now - datetime.timedelta(days=1), now + datetime.timedelta(days=365))
    soon, _key = issue("acme.lab", now - datetime.timedelta(days=80), now + datetime.timedelta(days=5), ca=ca).write(
        host.tmp, "acme"
    )
    later, _key = issue("globex.lab", now, now + datetime.timedelta(days=60), ca=ca).write(host.tmp, "globex")
    tenants = [dict(tenant("acme", 3001), tls_cert=str(soon), tls_key=str(host.tmp / "acme.key")),
               dict(tenant("globex", 3002), tls_cert=str(later), tls_key=str(host.tmp / "globex.key")),
               tenant("initech", 3003)]  # fmt: skip
    problems = host.rollout(V1, tenants=tenants).plan()["certificates"]
    assert list(problems) == ["acme"], "globex has 60 days left, initech has no TLS"
    assert "expires in 4 day(s)" in problems["acme"]
    assert "sooner than the 14 days required" in problems["acme"]
    assert host.rollout(V1, tenants=tenants, tls_min_days=3).plan()["certificates"] == {}
    later.unlink()
    assert host.rollout(V1, tenants=tenants, tls_min_days=3).plan()["certificates"] == {
        "globex": f"{later} cannot be read (No such file or directory)"
    }


def test_the_plan_shows_what_would_change_and_changes_nothing(host):
    on_v1_with_data(host)
    calls = len(host.engine.calls)
    plan = host.rollout(V2, tenants=[*TENANTS, tenant("newco", 3003)]).plan()
    assert [(t["name"], t["action"]) for t in plan["tenants"]] == [
        ("acme", "replace"),
        ("globex", "replace"),
        ("newco", "create"),
    ]
    assert {d["field"] for d in plan["tenants"][0]["drift"]} >= {"digest", "labels.pinned.release.digest"}
    assert "pinned-release-newco.conf" in plan["sites_to_change"]
    assert not [c for c in host.engine.calls[calls:] if c[0] not in ("inspect", "listing")]
    assert not Path(host.site_dir, "pinned-release-newco.conf").exists()
    assert "key-of" not in json.dumps(plan), "no secret value in the plan or its diff"


def test_journal_and_copies_are_private_files(host):
    on_v1_with_data(host)

    def crash(at, name, phase):
        if at == "start" and phase == "after":
            raise SimulatedCrash(at)

    with pytest.raises(SimulatedCrash):
        host.rollout(V2, tenants=TENANTS[:1], failpoint=crash).execute()
    for path in (host.tmp / "state/journal").rglob("*"):
        if path.is_file():
            assert oct(os.stat(path).st_mode & 0o777) == "0o600", path


@pytest.mark.parametrize("step", ["restore", "start", "verify", "commit"])
def test_a_crash_during_a_rollback_with_restore_then_a_rerun_ends_on_the_pre_upgrade_data(host, step):
    upgraded_with_writes(host)

    def crash(at, name, phase):
        if at == step and name == "acme" and phase == "after":
            raise SimulatedCrash(at)

    with pytest.raises(SimulatedCrash):
        host.rollout(V1, data_mode="auto", failpoint=crash).execute()
    result = host.run(V1, data_mode="auto")
    assert not result.get("failed"), result
    for t in TENANTS:
        assert host.running(t["name"]) == (V1, "running")
        assert host.read(t["name"], "sentinel") == f"v1-data-{t['name']}"
    assert host.names() == {"openwebui-acme", "openwebui-globex"}
    assert host.journal.pending() == {}
    kept = [p for p in (host.tmp / "opt/acme").glob("data.*") if p.is_dir() and (p / "kv/written-on-v2").exists()]
    assert kept, "the writes made on v2 are kept aside somewhere, never deleted"


def test_a_failed_tenant_comes_with_its_last_log_lines_without_secrets(host):
    on_v1_with_data(host)
    (host.data("acme") / "schema_version").write_text("7")  # data newer than any version understands
    result = host.run(V2, tenants=TENANTS[:1])
    acme = result["tenants"][0]
    assert any("refusing to start" in line for line in acme["logs"]), acme["logs"]
    assert not any("key-of-acme" in line for line in acme["logs"]), "a log line with the secret key is dropped"
