# SPDX-License-Identifier: GPL-3.0-or-later
"""The release workflow on the lab: test -> promote -> production, the v2 migration, idempotence, secrets.

The tests of this module run in order on one lab and build on each other's state, like a real release does.
"""

from __future__ import annotations

import json
import subprocess

import yaml

from tests.support.lab import NODES, ROOT, node_sh, registry_digest
from tests.support.receivers import WebhookReceiver
from tests.support.workflow import (
    PRODUCTION,
    TENANTS,
    assert_no_secret_in,
    audit_lines,
    diagnostics,
    http,
    read_sentinel,
    tenant,
    wait_healthy,
    write_sentinels,
)


def test_test_deploy_writes_passing_evidence(ws):
    v1 = ws.release("v1")
    run = ws.play("playbooks/deploy.yml", "-l", "test")
    assert run.returncode == 0, run.output[-3000:] + diagnostics(["test1"])
    record = json.loads((ws.evidence_dir / f"{v1.replace(':', '-')}.json").read_text())
    assert record["digest"] == v1
    assert record["passed"] is True
    checks = record["hosts"]["test1"]["tenants"]["alpha"]["checks"]
    assert {c["name"] for c in checks} >= {"health", "secret key kept", "streaming answer (SSE through nginx)",
                                           "the tenant is isolated", "the secret key is still the data's after a restart"}  # fmt: skip
    assert all(c["passed"] for c in checks), checks
    memory = next(c for c in checks if c["name"] == "memory is small and steady")
    assert 0 < memory["memory_bytes"] <= 64 * 1024**2, memory
    assert memory["memory_after_bytes"] > 0, memory
    restarted = next(c for c in checks if c["name"] == "the secret key is still the data's after a restart")
    assert "(after a restart, " in restarted["detail"]
    for t in TENANTS["test1"]:
        state = wait_healthy("test1", t["name"], 30)  # ready as the app answers; Docker's healthcheck agrees soon after
        assert (state["digest"], state["label"], state["health"]) == (v1, v1, "healthy")


def git(ws, *args: str) -> str:
    return subprocess.run(["git", "-C", str(ws.directory), *args], capture_output=True, text=True, check=True).stdout


def test_promote_pins_the_tested_digest(ws):
    """Check mode, then the pin and its commit, then a second run: it would pin, it pins once, and nothing more."""
    v1 = registry_digest("v1")
    git(ws, "init", "-q")
    git(ws, "config", "user.name", "pytest")
    git(ws, "config", "user.email", "pytest@lab")
    git(ws, "commit", "-q", "--allow-empty", "-m", "base")
    pin_dir = ws.pin_file.parent
    before = {p.name: p.read_bytes() for p in pin_dir.iterdir()}
    check = ws.play("playbooks/promote.yml", "--check", "-e", "promote_git_commit=true")
    assert check.returncode == 0, check.output[-3000:]
    assert check.changed() >= 1, "check mode does not say it would pin"
    assert {p.name: p.read_bytes() for p in pin_dir.iterdir()} == before, "check mode wrote a pin file"
    assert git(ws, "rev-list", "--count", "HEAD").strip() == "1", "check mode committed"
    run = ws.play("playbooks/promote.yml", "-e", "promote_git_commit=true")
    assert run.returncode == 0, run.output[-3000:]
    pin = ws.pin()["release_pin"]
    assert pin["digest"] == v1
    assert pin["evidence"]["passed"] is True
    assert (pin_dir / "DOCKER_IMAGE_PIN.md").read_text().count(v1) >= 1
    assert git(ws, "log", "-1", "--format=%s").startswith(f"Pin {pin['repository']} to {v1[:19]} (")
    pin_files = [str(ws.pin_file), str(pin_dir / "DOCKER_IMAGE_PIN.md")]
    assert git(ws, "status", "--porcelain", "--", *pin_files) == "", "the pin files are not both committed"
    again = ws.play("playbooks/promote.yml", "-e", "promote_git_commit=true")
    assert again.returncode == 0, again.output[-3000:]
    assert again.changed() == 0, f"a second promote changed {again.recap()}"
    assert git(ws, "rev-list", "--count", "HEAD").strip() == "2", "a second promote committed again"


def test_production_rollout_and_what_the_nodes_show(ws):
    v1 = registry_digest("v1")
    run = ws.play("playbooks/deploy.yml", "-l", "production")
    assert run.returncode == 0, run.output[-3000:] + diagnostics(PRODUCTION)
    for node in PRODUCTION:
        for t in TENANTS[node]:
            state = wait_healthy(node, t["name"], 30)
            assert (state["digest"], state["health"]) == (v1, "healthy"), f"{node}/{t['name']}: {state}"
            config = json.loads(http(node, t["domain"], "/api/config"))
            assert config["secret_key_matches"] is True
            assert config["name"] == t["env"]["WEBUI_NAME"]
        # Published ports listen on loopback only; nginx is the way in.
        listening = node_sh(node, "ss -Hltn").stdout
        for t in TENANTS[node]:
            assert f"127.0.0.1:{t['port']}" in listening
            assert f"0.0.0.0:{t['port']}" not in listening
            assert f"*:{t['port']}" not in listening
        modes = node_sh(
            node,
            f"stat -c '%a %n' /opt/openwebui/{TENANTS[node][0]['name']}/secrets.env /etc/nginx/conf.d/pinned-release-{TENANTS[node][0]['name']}.conf",
        ).stdout
        assert modes.splitlines()[0].startswith("600 ")
        site = node_sh(node, f"cat /etc/nginx/conf.d/pinned-release-{TENANTS[node][0]['name']}.conf").stdout
        assert "proxy_buffering off;" in site
        assert f"server_name {TENANTS[node][0]['domain']};" in site
        lines = audit_lines(node)
        assert {line["tenant"] for line in lines if line["result"] == "ok" and line["to"] == v1} == {
            t["name"] for t in TENANTS[node]
        }
        assert all(line["operator"] == "pytest" for line in lines)


def test_second_runs_change_nothing(ws):
    for playbook, args in (
        ("playbooks/deploy.yml", ["-l", "test"]),
        ("playbooks/promote.yml", []),
        ("playbooks/deploy.yml", ["-l", "production"]),
    ):
        run = ws.play(playbook, *args)
        assert run.returncode == 0, run.output[-3000:]
        assert run.changed() == 0, f"{playbook} {args} changed {run.recap()}"


def test_check_mode_reports_and_changes_nothing(ws):
    ws.release("v2")
    before = {(n, t["name"]): tenant(n, t["name"])["started_at"] for n in ["test1"] for t in TENANTS[n]}
    run = ws.play("playbooks/deploy.yml", "-l", "test", "--check", "--diff")
    assert run.returncode == 0, run.output[-3000:]
    assert "alpha: would replace (digest: expected " in run.text
    after = {(n, t["name"]): tenant(n, t["name"])["started_at"] for n in ["test1"] for t in TENANTS[n]}
    assert before == after
    assert not any(
        p.name.startswith("sha256-") and registry_digest("v2").split(":")[1] in p.name
        for p in ws.evidence_dir.iterdir()
    )


def test_v2_migration_keeps_data_and_secret_key(ws):
    write_sentinels(PRODUCTION, "written-on-v1")
    v2 = ws.cycle("v2")
    for node in PRODUCTION:
        for t in TENANTS[node]:
            state = wait_healthy(node, t["name"], 30)
            assert (state["digest"], state["health"]) == (v2, "healthy")
            assert read_sentinel(node, t) == "written-on-v1"
            config = json.loads(http(node, t["domain"], "/api/config"))
            assert (config["schema"], config["secret_key_matches"]) == (2, True)
            snapshots = node_sh(node, f"ls /opt/openwebui/{t['name']}/snapshots/").stdout.split()
            assert any(s.endswith(".tar.gz") for s in snapshots), "no snapshot before the upgrade"
    history = ws.pin()["release_pin_history"]
    assert history[0]["digest"] == registry_digest("v1")


def test_a_host_whose_own_variables_are_refused_leaves_the_rest_of_its_wave_to_roll_out(ws):
    """A host that fails the role's argument validation is dropped from its batch by Ansible before the preflight; with
    a failure budget that allows it, the batch that is left is still the wave, less that host (it used to be refused as
    "not one of the waves", which stopped the healthy hosts of the wave too). The notification still names it."""
    bad, good = PRODUCTION
    host_vars = ws.directory / f"host_vars/{bad}.yml"
    kept = host_vars.read_text()
    host_vars.write_text(kept + "release_watch_minutes: soon\n")
    ws.hook = WebhookReceiver()
    target = {"name": "ops-webhook", "type": "webhook", "url": ws.hook.url("/hook")}
    notify = ws.directory / "group_vars/all/notify.yml"
    notify.write_text(yaml.safe_dump({"release_notify_targets": [target], "release_notify_timeout": 2}))
    try:
        run = ws.play(
            "playbooks/deploy.yml", "-l", "production", "-e", '{"release_waves": [2]}',
            "-e", "release_max_fail_percentage=50",
        )  # fmt: skip
    finally:
        host_vars.write_text(kept)
        notify.unlink()
        ws.hook.close()
    assert run.returncode != 0, "the refused host fails the run"
    assert "production_deploy_watch_minutes" in run.text, run.output[-3000:]
    assert "is not one of the waves" not in run.text, run.output[-3000:]
    recap = run.recap()
    assert recap[good]["failed"] == 0, run.output[-3000:]
    assert recap[bad]["failed"] == 1, run.output[-3000:]
    assert "TASK [pinned.release.tenant : " in run.output, "the good host rolled out"
    told = ws.told("rollout")
    assert len(told) == 1, told
    assert f"finished on 1 of 2 host(s): failed on {bad}" in told[0]["title"], told[0]["title"]


def test_drift_is_clean_after_the_cycle(ws):
    run = ws.play("playbooks/drift.yml")
    assert run.returncode == 0, run.output[-3000:]
    report = json.loads((ws.directory / ".release_state/drift/report.json").read_text())
    assert report["drifted"] is False
    assert sorted(report["hosts"]) == PRODUCTION


def test_no_secret_in_any_host_log_nor_in_verbose_or_failed_output(ws):
    """Ansible logs module parameters to each host's syslog: secrets must only ever be no_log parameters."""
    verbose = ws.play("playbooks/deploy.yml", "-l", "production", "-vvv")
    assert verbose.returncode == 0, verbose.output[-3000:]
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in verbose.output, "-vvv shows the invocation, secrets marked"
    bad_type = ws.play(
        "tests/playbooks/tenant.yml", "-l", "test1", "-e", "tenant_image=x", "-e", '{"tenant_batch": [1]}'
    )
    assert bad_type.returncode != 0
    assert "argument_spec" in bad_type.output or "Validating arguments" in bad_type.output
    for run in (verbose, bad_type):
        assert_no_secret_in(run.output)
    for node in NODES:
        syslog = node_sh(node, "cat /var/log/messages").stdout
        assert "ansible-pinned.release.tenant_rollout: Invoked with" in syslog, (
            f"{node}: the module's invocation is logged"
        )
        assert "'secrets': {'OAUTH_CLIENT_SECRET': '********', 'WEBUI_SECRET_KEY': '********'}" in syslog
        assert_no_secret_in(syslog)


def test_no_secret_in_any_output_or_file(ws):
    for run in ws.runs:
        assert_no_secret_in(run.output)
    for path in ws.directory.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".xml", ".yml"):
            shipped = ROOT / "inventories/lab" / path.relative_to(ws.directory)
            if shipped.is_file() and shipped.read_bytes() == path.read_bytes():
                continue  # the lab inventory as shipped holds the lab's plain-text secrets; what runs write is checked
            assert_no_secret_in(path.read_text())
    for node in NODES:
        assert_no_secret_in(
            node_sh(
                node, "cat /var/log/pinned-release/audit.jsonl /etc/nginx/conf.d/pinned-release-* 2>/dev/null"
            ).stdout
        )
