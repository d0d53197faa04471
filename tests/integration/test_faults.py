# SPDX-License-Identifier: GPL-3.0-or-later
"""The fault matrix: each fault's outcome, and that nothing was lost (data, health, the previous digest)."""

from __future__ import annotations

import json
import time

from tests.support.lab import (
    APP_REPO,
    NODE_CONTAINER_PREFIX,
    ansible_module,
    lab_script,
    node_sh,
    registry_digest,
    registry_unreachable_from,
)
from tests.support.workflow import (
    PRODUCTION,
    TENANTS,
    audit_lines,
    diagnostics,
    read_sentinel,
    tenant,
    wait_healthy,
    write_sentinels,
)

TENANT_PLAYBOOK = "tests/playbooks/tenant.yml"
TELL_A_WEBHOOK = True  # each fault's notification is asserted in the test that makes it


def prepare_workspace(workspace):
    """v1 everywhere, with data the faults must not lose (the ws fixture is in conftest.py)."""
    workspace.cycle("v1")
    write_sentinels(["test1", *PRODUCTION], "before-faults")


def started(node: str) -> dict:
    return {t["name"]: tenant(node, t["name"]).get("started_at") for t in TENANTS[node]}


def all_on(node: str, digest: str) -> None:
    for t in TENANTS[node]:
        state = wait_healthy(node, t["name"], 30)
        assert (state.get("digest"), state.get("health")) == (digest, "healthy"), (
            f"{node}/{t['name']}: {state}\n{diagnostics([node])}"
        )
        assert read_sentinel(node, t) == "before-faults", f"{node}/{t['name']} lost its data"


def force_pin(ws, digest: str, reason: str) -> None:
    result = ansible_module(
        "pinned.release.pin_digest",
        {"path": str(ws.pin_file), "image": f"{APP_REPO}@{digest}", "reason": reason, "force": True},
    )
    assert result.get("failed") is not True, result


def forced_rollout(ws):
    """deploy.yml -l production of a pin that has no test evidence (the faults force their pins)."""
    return ws.play(
        "playbooks/deploy.yml",
        "-l",
        "production",
        "-e",
        "production_deploy_force=true",
        "-e",
        "production_deploy_reason='fault test'",
    )


def put_back(ws, node: str, digest: str) -> None:
    run = ws.play(TENANT_PLAYBOOK, "-l", node, "-e", f"tenant_image={APP_REPO}@{digest}")
    assert run.returncode == 0, run.output[-3000:]


def test_broken_candidate_is_caught_on_test_and_promote_refuses(ws):
    v1 = registry_digest("v1")
    broken = ws.release("broken")
    pin_before = ws.pin_file.read_bytes()
    run = ws.play("playbooks/deploy.yml", "-l", "test")
    assert run.returncode != 0
    assert f"failed on sha256:{broken.split(':')[1]}" in run.text
    all_on("test1", v1)
    record = json.loads((ws.evidence_dir / f"{broken.replace(':', '-')}.json").read_text())
    assert record["passed"] is False
    assert "healthcheck reports unhealthy" in record["hosts"]["test1"]["deploy_error"]
    told = ws.told("candidate_tested")[-1]
    assert told["status"] == "failed"
    assert f"({broken[:19]}) FAILED its checklist on test1" in told["title"]
    assert "test1: FAILED: " in told["text"]
    assert "promote.yml will refuse this digest" in told["text"]
    promote = ws.play("playbooks/promote.yml")
    assert promote.returncode != 0
    assert "checklist failed" in promote.text
    assert ws.pin_file.read_bytes() == pin_before


def test_a_container_reading_a_test_tenants_folder_fails_the_isolation_check_and_promote_refuses(ws):
    """Isolation is a check of the candidate's evidence: broken on purpose, the candidate must not reach production."""
    v2 = ws.release("v2")
    name = TENANTS["test1"][0]["name"]
    node_sh("test1", f"docker run -d --name peek-by-hand -v /opt/openwebui/{name}:/peek:ro {APP_REPO}@{v2}")
    try:
        run = ws.play("playbooks/deploy.yml", "-l", "test")
    finally:
        node_sh("test1", "docker rm -f peek-by-hand")
    assert run.returncode != 0
    record = json.loads((ws.evidence_dir / f"{v2.replace(':', '-')}.json").read_text())
    assert record["passed"] is False
    checks = {c["name"]: c for c in record["hosts"]["test1"]["tenants"][name]["checks"]}
    assert checks["the tenant is isolated"] == {
        "name": "the tenant is isolated",
        "passed": False,
        "detail": f"container peek-by-hand mounts /opt/openwebui/{name}, which is {name}'s folder",
    }
    others = [t["name"] for t in TENANTS["test1"][1:]]
    failed_elsewhere = [(t, c["name"], c.get("detail")) for t in others
                        for c in record["hosts"]["test1"]["tenants"][t]["checks"] if not c["passed"]]  # fmt: skip
    assert failed_elsewhere == [], "only its own"
    promote = ws.play("playbooks/promote.yml")
    assert promote.returncode != 0
    assert "checklist failed" in promote.text


def test_after_a_refused_candidate_the_next_is_tested_from_the_pin_without_any_manual_step(ws):
    """A candidate refused by its checklist stays on the test host with the data it migrated; the next candidate
    must still be tested as production will take it: from the pin (v1), not from the refused one."""
    v1, v2 = registry_digest("v1"), ws.release("v2")
    impossible = json.dumps(
        {"release_checklist": [{"name": "an answer nobody gives", "path": "/health", "status": 299}]}
    )
    refused = ws.play("playbooks/deploy.yml", "-l", "test", "-e", impossible)
    assert refused.returncode != 0
    assert "an answer nobody gives" in refused.text
    assert {tenant("test1", t["name"]).get("digest") for t in TENANTS["test1"]} == {v2}, "the refused one stays"
    slow = ws.release("slow")  # runs on v1's data only: from v2's migrated data it would fail
    run = ws.play("playbooks/deploy.yml", "-l", "test")
    assert run.returncode == 0, run.output[-4000:] + diagnostics(["test1"])
    record = json.loads((ws.evidence_dir / f"{slow.replace(':', '-')}.json").read_text())
    assert (record["passed"], record["from_digest"]) == (True, v1)
    reasons = [line.get("reason", "") for line in audit_lines("test1")]
    assert any(r.startswith("test: on the production pin before") for r in reasons), reasons[-6:]
    all_on("test1", slow)
    promote = ws.play("playbooks/promote.yml")
    assert promote.returncode == 0, promote.output[-3000:]
    assert ws.pin()["release_pin"]["digest"] == slow
    force_pin(ws, v1, "fault test: back to v1 after the from-the-pin test")
    put_back(ws, "test1", v1)


def test_missing_candidate_tag_fails_before_anything_is_touched(ws):
    before = started("test1")
    run = ws.play("playbooks/deploy.yml", "-l", "test", "-e", f"release_candidate={APP_REPO}:no-such-tag")
    assert run.returncode != 0
    assert f"tag 'no-such-tag' not found in repository {APP_REPO}" in run.text
    assert started("test1") == before


def test_broken_forced_into_production_stops_at_the_first_host(ws):
    v1, broken = registry_digest("v1"), registry_digest("broken")
    force_pin(ws, broken, "fault test: broken forced")
    untouched = started("prod2")
    run = forced_rollout(ws)
    assert run.returncode != 0
    assert f"prod1: acme failed on {broken}" in run.text
    assert "previous image " + f"{APP_REPO}@{v1} healthy" in run.text
    all_on("prod1", v1)
    assert started("prod2") == untouched, "the rollout went on to prod2 after prod1 failed"
    all_on("prod2", v1)
    failed = [line for line in audit_lines("prod1") if line["result"].startswith("failed")]
    assert failed, "no failed line in prod1's audit log"
    assert (failed[-1]["from"], failed[-1]["to"]) == (v1, broken)
    data_dirs = node_sh("prod1", "ls /opt/openwebui/acme").stdout.split()
    assert any(d.startswith("data.failed-") for d in data_dirs), "the failed data must be kept aside, not deleted"
    told = ws.told("rollout")[-1]
    assert told["status"] == "failed"
    assert told["title"].startswith("Rollout of")
    assert "STOPPED in wave 1 of 2: failed on prod1" in told["title"]  # the canary
    assert "prod1: 0 replaced, 0 up to date, " in told["text"]
    assert " put back, 0 DOWN" in told["text"]
    assert "the data it ran on is kept in /opt/openwebui/acme/data.failed-" in told["text"], "the writes are named"
    assert "not reached (1): prod2" in told["text"]
    force_pin(ws, v1, "fault test: back to v1")


def test_registry_down_fails_at_pull_before_any_stop(ws):
    v1, v2 = registry_digest("v1"), registry_digest("v2")
    force_pin(ws, v2, "fault test: registry down")
    node_sh("prod1", f"docker image rm {APP_REPO}@{v2} >/dev/null 2>&1 || true")
    before = started("prod1")
    with registry_unreachable_from("prod1"):
        run = forced_rollout(ws)
    assert run.returncode != 0
    assert f"pulling {APP_REPO}@{v2} failed before any tenant was touched" in run.text
    assert started("prod1") == before
    all_on("prod1", v1)
    force_pin(ws, v1, "fault test: back to v1")


def test_slow_image_within_timeout_passes(ws):
    slow = registry_digest("slow")
    run = ws.play(TENANT_PLAYBOOK, "-l", "test1", "-e", f"tenant_image={APP_REPO}@{slow}")
    assert run.returncode == 0, run.output[-3000:]
    for t in TENANTS["test1"]:
        # ready when the app answers; Docker's own healthcheck agrees within its interval
        assert wait_healthy("test1", t["name"], 30)["health"] == "healthy"
    put_back(ws, "test1", registry_digest("v1"))


def wait_for_lock(node: str, timeout: int = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = node_sh(node, "cat /var/lib/pinned-release/deploy.lock", check=False)
        if result.returncode == 0 and result.stdout.strip():
            return json.loads(result.stdout)
        time.sleep(0.3)
    raise AssertionError(f"no deploy lock appeared on {node}")


def test_two_deploys_at_once_the_second_is_refused(ws):
    slow = registry_digest("slow")
    put_back(ws, "test1", registry_digest("v1"))  # so the first deploy has work to do while it holds the lock
    first = ws.start(TENANT_PLAYBOOK, "-l", "test1", "-e", f"tenant_image={APP_REPO}@{slow}")
    try:
        holder = wait_for_lock("test1")
        second = ws.play(TENANT_PLAYBOOK, "-l", "test1", "-e", f"tenant_image={APP_REPO}@{registry_digest('v1')}")
        assert second.returncode != 0
        assert f"test1 is locked by another deploy: pytest since {holder['started_at']}" in second.text
    finally:
        done = ws.finish(first)
    assert done.returncode == 0, done.output[-3000:]
    put_back(ws, "test1", registry_digest("v1"))


def test_host_unreachable_mid_rollout_halts_and_leaves_hosts_consistent(ws):
    # slow, not v2: v2 migrates the data, and v1 could not be put back on prod1 afterwards.
    v1, target = registry_digest("v1"), registry_digest("slow")
    force_pin(ws, target, "fault test: unreachable host")
    import subprocess

    subprocess.run(["docker", "stop", f"{NODE_CONTAINER_PREFIX}prod2"], check=True, capture_output=True)
    try:
        run = forced_rollout(ws)
    finally:
        lab_script("up")
    assert run.returncode != 0
    assert "UNREACHABLE" in run.text
    told = ws.told("rollout")[-1]
    assert told["status"] == "failed"
    assert "STOPPED in wave 2 of 2: failed on prod2" in told["title"]
    assert (
        "prod2: 0 replaced, 0 up to date, 0 put back, 0 DOWN, 0 not attempted; FAILED: prod2 is unreachable"
        in told["text"]
    )
    assert "prod1: 2 replaced" in told["text"]
    for t in TENANTS["prod1"]:
        state = wait_healthy("prod1", t["name"], 30)
        assert (state["digest"], state["health"]) == (target, "healthy")
    for t in TENANTS["prod2"]:
        state = tenant("prod2", t["name"])
        deadline = time.monotonic() + 60
        while state.get("health") != "healthy" and time.monotonic() < deadline:
            time.sleep(1)
            state = tenant("prod2", t["name"])
        assert (state["digest"], state["health"]) == (v1, "healthy")
        assert read_sentinel("prod2", t) == "before-faults"
    force_pin(ws, v1, "fault test: back to v1")
    put_back(ws, "prod1", v1)


def test_corrupt_pin_file_is_a_clear_error_and_stays_unchanged(ws):
    good = ws.pin_file.read_bytes()
    corrupt = good + b"release_pin_history:\n  - [broken\n"
    ws.pin_file.write_bytes(corrupt)
    try:
        ws.release("v1")
        ws.play("playbooks/deploy.yml", "-l", "test")
        promote = ws.play("playbooks/promote.yml")
        assert promote.returncode != 0
        assert str(ws.pin_file) in promote.text
        assert "release_pin.yml" in promote.text
        assert ws.pin_file.read_bytes() == corrupt
        # Ansible itself loads group_vars and stops with its own message (it does not name the file);
        # the documented way to find the line is a read-only pin_digest call.
        deploy = ws.play("playbooks/deploy.yml", "-l", "production")
        assert deploy.returncode != 0
        assert "YAML parsing failed" in deploy.text
        read = ansible_module("pinned.release.pin_digest", {"path": str(ws.pin_file)})
        assert f"pin file {ws.pin_file} is not valid YAML at line" in read["msg"]
        assert ws.pin_file.read_bytes() == corrupt
    finally:
        ws.pin_file.write_bytes(good)
