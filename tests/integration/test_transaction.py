# SPDX-License-Identifier: GPL-3.0-or-later
"""The host release transaction on the lab: each way a deploy used to lose data or leave a tenant down.

The transaction's logic - every step, crash point, put-back and input - is proved in the unit layer on a fake engine
(tests/unit/plugins/module_utils/test_rollout*.py); here the real engine, kernel, nginx and processes show they
behave as it assumes: real kills and a node restart, real locks, a real full disk, nginx itself.

Every test starts from v1 on test1 with data (``fresh``), breaks something on purpose, and then looks at
the node itself: which container runs which image, the data, the files, the lock, the audit log.
"""

from __future__ import annotations

import json
import random
import re
import time

import pytest

from tests.support.lab import APP_REPO, container_state, lab_script, node_sh, registry_digest
from tests.support.workflow import TENANTS, audit_lines, diagnostics, http, read_sentinel, tenant, wait_healthy

PLAYBOOK = "tests/playbooks/tenant.yml"
NODE = "test1"
ALPHA = TENANTS[NODE][0]
LOCK = "/var/lib/pinned-release/deploy.lock"


def image(variant: str) -> str:
    return f"{APP_REPO}@{registry_digest(variant)}"


def deploy(ws, variant_or_image: str, *extra: str, node: str = NODE):
    target = variant_or_image if "@" in variant_or_image else image(variant_or_image)
    return ws.play(PLAYBOOK, "-l", node, "-e", f"tenant_image={target}", *extra)


def failpoint(step: str, tenant_name: str = "alpha") -> tuple:
    """Kill the host process right after the journal write ``step`` (``label@before``: just before it)."""
    label, _at, phase = step.partition("@")
    wanted = f"{label}:{tenant_name}" + (f"@{phase}" if phase else "")
    return ("-e", json.dumps({"lab_environment": {"PINNED_RELEASE_FAILPOINT": wanted}}))


def on(node: str, name: str, variant: str) -> dict:
    state = wait_healthy(node, name, 60)
    assert (state.get("digest"), state.get("health")) == (registry_digest(variant), "healthy"), (
        f"{node}/{name}: {state}\n{diagnostics([node])}"
    )
    return state


def all_whole(node: str = NODE, value: str = "v1-data") -> None:
    for t in TENANTS[node]:
        assert read_sentinel(node, t) == value, f"{node}/{t['name']} lost its data"


@pytest.fixture
def fresh(ws):
    """test1 freshly on v1, every tenant with a sentinel, no lock, no journal."""
    lab_script("reset-tenants", NODE)
    run = deploy(ws, "v1")
    assert run.returncode == 0, run.output[-3000:]
    for t in TENANTS[NODE]:
        assert "stored" in http(NODE, t["domain"], f"/api/kv/sentinel-{t['name']}", "v1-data")
    return ws


# ------------------------------------------------------------------ 10. crashes, then a plain re-run


# Every step, and a second crash in every recovery, is the unit crash matrix's (test_rollout_crash_matrix.py); the lab
# keeps one kill of the real process per kind of recovery: a created container discarded (create.created), put back
# (after stop; after the real renames of the swap: start@before), judged and kept, commit finished, put-back resumed.
@pytest.mark.parametrize("step", ["create.created", "stop", "start@before", "verify", "commit", "putback"])
def test_the_host_process_killed_at_a_step_then_a_plain_rerun_recovers(fresh, step):
    """kill -9 of the transaction itself on the host (as a reboot would), then the same command again."""
    target = "broken" if step == "putback" else "v2"
    crashed = deploy(fresh, target, *failpoint(step), "-e", "tenant_health_timeout=30")
    assert crashed.returncode != 0, "the failpoint did not fire"
    assert node_sh(NODE, f"test -s {LOCK}", check=False).returncode == 0, "the dead run's lock stays behind"
    rerun = deploy(fresh, target, "-e", "tenant_health_timeout=30")
    expected = "v1" if target == "broken" else "v2"
    if target == "broken":
        assert rerun.returncode != 0
        assert "healthcheck reports unhealthy" in rerun.text
    else:
        assert rerun.returncode == 0, rerun.output[-3000:] + diagnostics([NODE])
    assert "recovered from run" in rerun.text
    if step == "verify":
        assert "committed, with what users wrote on it" in rerun.text, "a ready new version is kept, not undone"
    for t in TENANTS[NODE]:
        on(NODE, t["name"], expected)
    all_whole()
    assert node_sh(NODE, f"test -e {LOCK}", check=False).returncode != 0, "the lock is released"
    assert node_sh(NODE, "ls /var/lib/pinned-release/journal 2>/dev/null").stdout.split() == []
    names = node_sh(NODE, "docker ps -a --format '{{.Names}}'").stdout.split()
    assert not [n for n in names if ".pinned-" in n], names
    results = [line["result"] for line in audit_lines(NODE)]
    assert any(r.startswith("lock taken over from run") for r in results)
    assert any(r.startswith("recovered: ") for r in results)


def holder_pid(node: str, timeout: float = 60) -> int:
    """The pid of the transaction holding the node's lock, as soon as it holds it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = node_sh(node, f"cat {LOCK} 2>/dev/null", check=False).stdout.strip()
        if found:
            return json.loads(found)["pid"]
        time.sleep(0.02)
    raise AssertionError(f"{node}: no deploy lock appeared within {timeout} s")


@pytest.mark.parametrize("round_", range(3))
def test_killed_at_a_moment_nobody_chose_then_users_write_then_a_rerun_keeps_every_write(fresh, round_):
    """The transaction's own process killed -9 at a random moment; users go on writing through nginx to whatever answers;
    a plain re-run. Every write is then live, or in a set-aside folder the re-run's output names."""
    delay = random.uniform(0.1, 0.9)  # noqa: S311 - a moment nobody chose, not a secret
    where = f"round {round_}: killed {delay:.2f} s after the lock was taken"
    proc = fresh.start(PLAYBOOK, "-l", NODE, "-e", f"tenant_image={image('v2')}")
    pid = holder_pid(NODE)
    time.sleep(delay)
    node_sh(NODE, f"kill -9 {pid}", check=False)
    fresh.finish(proc)
    written = [t for t in TENANTS[NODE] if "stored" in http(NODE, t["domain"], "/api/kv/after-the-kill", where)]
    rerun = deploy(fresh, "v2")
    assert rerun.returncode == 0, f"{where}\n{rerun.output[-3000:]}{diagnostics([NODE])}"
    for t in TENANTS[NODE]:
        on(NODE, t["name"], "v2")
    all_whole()
    for t in written:
        live = http(NODE, t["domain"], "/api/kv/after-the-kill")
        named = re.findall(rf"/opt/openwebui/{t['name']}/data\.failed-[^ ;)]+", rerun.text)
        kept = [a for a in named if node_sh(NODE, f"cat {a}/kv/after-the-kill", check=False).stdout == where]
        assert live == where or kept, f"{where}: {t['name']}'s write is neither live nor in a named aside ({named})"


def test_a_host_restarted_in_the_middle_of_a_move_never_starts_the_unverified_version(fresh):
    """A power loss while the new version is being verified: Docker must not start it on its own (it has no restart
    policy until committed), and a plain re-run must bring the tenant through."""
    crashed = deploy(fresh, "v2", *failpoint("verify"))
    assert crashed.returncode != 0, "the failpoint did not fire"
    assert container_state(NODE, "openwebui-alpha")["HostConfig"]["RestartPolicy"]["Name"] == "no"
    lab_script("restart-node", NODE)
    assert container_state(NODE, "openwebui-alpha")["State"]["Status"] != "running", (
        "Docker started an unverified version"
    )
    rerun = deploy(fresh, "v2")
    assert rerun.returncode == 0, rerun.output[-3000:] + diagnostics([NODE])
    for t in TENANTS[NODE]:
        on(NODE, t["name"], "v2")
        assert (
            container_state(NODE, f"openwebui-{t['name']}")["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        )
    all_whole()
    names = node_sh(NODE, "docker ps -a --format '{{.Names}}'").stdout.split()
    assert not [n for n in names if ".pinned-" in n], names


@pytest.mark.parametrize("moment", ["stopped", "started", "journal verify"])
def test_the_controller_killed_mid_rollout_then_a_plain_rerun_finishes(fresh, moment):
    """kill -9 of ansible-playbook (the laptop dies): the host finishes its transaction; the re-run waits, then converges."""
    slow = registry_digest("slow")
    proc = fresh.start(PLAYBOOK, "-l", NODE, "-e", f"tenant_image={APP_REPO}@{slow}")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = tenant(NODE, "alpha")
        journal = node_sh(NODE, "cat /var/lib/pinned-release/journal/alpha.json 2>/dev/null", check=False).stdout
        reached = {
            # the old container is exited only until the swap renames it: the journal's later steps say it too
            "stopped": state.get("status") == "exited"
            or any(f'"step": "{s}"' in journal for s in ("snapshot", "swap")),
            "started": state.get("digest") == slow,
            "journal verify": '"step": "verify"' in journal,
        }
        if reached[moment]:
            break
        time.sleep(0.05)
    fresh.kill(proc)
    rerun = deploy(fresh, "slow")
    assert rerun.returncode == 0, rerun.output[-3000:] + diagnostics([NODE])
    for t in TENANTS[NODE]:
        on(NODE, t["name"], "slow")
    all_whole()
    assert node_sh(NODE, f"test -e {LOCK}", check=False).returncode != 0


def test_another_controller_is_refused_with_the_command_and_the_tenants_that_are_down(fresh):
    crashed = deploy(fresh, "v2", *failpoint("start"))
    assert crashed.returncode != 0
    holder = json.loads(node_sh(NODE, f"cat {LOCK}").stdout)
    node_sh(NODE, f'sed -i \'s/"host": "[^"]*"/"host": "someone-elses-laptop"/\' {LOCK}')
    refused = deploy(fresh, "v2")
    assert refused.returncode != 0
    text = refused.text
    assert f"{NODE} is locked by a deploy that is no longer running" in text
    assert "interrupted at alpha (step start)" in text
    assert "Tenants down now: alpha" in text
    assert f"-e tenant_break_lock={holder['run_id']}" in text
    assert f"tests/playbooks/tenant.yml -l {NODE}" in text, "the refusal names the command to run"
    broke = deploy(fresh, "v2", "-e", f"tenant_break_lock={holder['run_id']}")
    assert broke.returncode == 0, broke.output[-3000:]
    for t in TENANTS[NODE]:
        on(NODE, t["name"], "v2")
    all_whole()
    takeover = [line for line in audit_lines(NODE) if line["result"].startswith("lock taken over")]
    assert takeover[-1]["previous_holder"]["run_id"] == holder["run_id"]
    assert takeover[-1]["why"] == f"break_lock={holder['run_id']}"
    deploy(fresh, "v1")


# ------------------------------------------------------------------ 9. breaking a lock


def test_break_lock_true_is_refused_and_a_live_lock_is_never_broken(fresh):
    refused = deploy(fresh, "v1", "-e", "tenant_break_lock=true")
    assert refused.returncode != 0
    assert "tenant_break_lock takes the run id the lock refusal names, or 'stale'" in refused.text
    proc = fresh.start(PLAYBOOK, "-l", NODE, "-e", f"tenant_image={image('slow')}")
    try:
        deadline = time.monotonic() + 60
        while node_sh(NODE, f"test -s {LOCK}", check=False).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        holder = json.loads(node_sh(NODE, f"cat {LOCK}").stdout)
        stale = deploy(fresh, "v1", "-e", "tenant_break_lock=stale", "-e", "tenant_lock_max_age=0")
        assert stale.returncode != 0
        assert f"{NODE} is locked by another deploy: pytest since {holder['started_at']}" in stale.text
        assert "its transaction is still running on this host" in stale.text
        # Naming the live run waits for it to end, then goes on: two transactions never overlap.
        named = deploy(fresh, "slow", "-e", f"tenant_break_lock={holder['run_id']}")
    finally:
        first = fresh.finish(proc)
    assert first.returncode == 0, first.output[-3000:]
    assert named.returncode == 0, named.output[-3000:]
    lines = audit_lines(NODE)
    first_done = max(i for i, line in enumerate(lines) if line.get("run_id") == holder["run_id"])
    assert all(line.get("run_id") == holder["run_id"] for line in lines[: first_done + 1] if line.get("tenant") in ("alpha", "beta")
               and line.get("time", "") >= holder["started_at"])  # fmt: skip
    assert not any(
        line["result"].startswith("lock taken over") for line in lines if line.get("time", "") >= holder["started_at"]
    )
    deploy(fresh, "v1")


# ------------------------------------------------------------------ 1. and 3. snapshots keep the rollback point


def test_not_enough_space_for_the_snapshot_is_refused_before_anything_stops(fresh):
    before = tenant(NODE, "alpha")["started_at"]
    node_sh(NODE, "mkdir -p /opt/openwebui/alpha/snapshots && mount -t tmpfs -o size=256k tmpfs /opt/openwebui/alpha/snapshots "
                  "&& dd if=/dev/urandom of=/opt/openwebui/alpha/data/blob bs=1M count=2 2>/dev/null")  # fmt: skip
    try:
        run = deploy(fresh, "v2")
    finally:
        node_sh(NODE, "umount /opt/openwebui/alpha/snapshots; rm -f /opt/openwebui/alpha/data/blob")
    assert run.returncode != 0
    assert "not enough free space under /opt/openwebui" in run.text
    assert "(alpha (snapshot) 2.0 MB)" in run.text
    assert "KB free" in run.text
    assert "Nothing was stopped" in run.text
    assert tenant(NODE, "alpha")["started_at"] == before


# ------------------------------------------------------------------ 2. 3. 4. the put-back always finishes, exactly


def test_a_container_started_by_hand_on_other_data_is_refused_not_replaced(fresh):
    """Replacing it would start the tenant on its own (other) data folder: the hand-made data would seem lost."""
    base = "/opt/openwebui/alpha"
    node_sh(NODE, f"docker rm -f openwebui-alpha >/dev/null && docker run -d --name openwebui-alpha -p 127.0.0.1:3001:8080 "
                  f"-v handmade-alpha:/app/backend/data --env-file {base}/app.env --env-file {base}/secrets.env "
                  f"{image('v1')} >/dev/null")  # fmt: skip
    try:
        wait_healthy(NODE, "alpha")
        assert "stored" in http(NODE, ALPHA["domain"], "/api/kv/sentinel-alpha", "made-by-hand")
        before = tenant(NODE, "alpha")["started_at"]
        run = deploy(fresh, "v2")
        assert run.returncode != 0
        assert "openwebui-alpha was started by hand with its data on /var/lib/docker/volumes/handmade-alpha/_data" in (
            run.text
        )
        assert "Adopt it first (playbooks/adopt.yml)" in run.text
        assert tenant(NODE, "alpha")["started_at"] == before, "the hand-started container was touched"
        assert read_sentinel(NODE, ALPHA) == "made-by-hand"
    finally:
        node_sh(
            NODE, "docker rm -f openwebui-alpha >/dev/null; docker volume rm -f handmade-alpha >/dev/null", check=False
        )


def test_unknown_names_get_no_answer_and_a_removed_tenants_site_goes(fresh):
    unknown = node_sh(
        NODE, "curl -s -o /dev/null -w '%{http_code}' -H 'Host: nobody.lab' http://127.0.0.1/health", check=False
    )
    assert unknown.stdout == "000", "the default server closes the connection without an answer"
    only_alpha = json.dumps({"tenant_tenants": [ALPHA]})
    run = deploy(fresh, "v1", "-e", only_alpha)
    assert run.returncode == 0, run.output[-3000:]
    assert node_sh(NODE, "test -e /etc/nginx/conf.d/pinned-release-beta.conf", check=False).returncode != 0
    beta = TENANTS[NODE][1]
    gone = node_sh(NODE, f"curl -s -m 5 -H 'Host: {beta['domain']}' http://127.0.0.1/health", check=False)
    assert gone.returncode == 52, "beta's domain no longer routes anywhere (the default server answers nothing)"
    assert gone.stdout == ""
    assert "openwebui-beta" in run.text, "its container stays, and the output says so"
    deploy(fresh, "v1")


def test_a_site_nginx_rejects_is_removed_and_the_message_says_so(fresh):
    gamma = {"name": "gamma", "domain": "gamma.test.lab", "port": 3003, "secrets": {"WEBUI_SECRET_KEY": "lab-secret-gamma-000001"},
             "tls_cert": "/etc/ssl/gamma.pem", "tls_key": "/etc/ssl/gamma.key"}  # fmt: skip
    missing = deploy(fresh, "v1", "-e", json.dumps({"tenant_tenants": [*TENANTS[NODE], gamma]}))
    assert missing.returncode != 0
    assert "tenant gamma: tls_cert /etc/ssl/gamma.pem is not a file on this host;" in missing.text
    node_sh(NODE, "echo not-a-certificate > /etc/ssl/gamma.pem && echo not-a-key > /etc/ssl/gamma.key")
    run = deploy(fresh, "v1", "-e", json.dumps({"tenant_tenants": [*TENANTS[NODE], gamma]}))
    assert run.returncode != 0
    assert "nginx -t rejected the change (new file(s) removed: pinned-release-gamma.conf)" in run.text
    assert node_sh(NODE, "test -e /etc/nginx/conf.d/pinned-release-gamma.conf", check=False).returncode != 0
    assert node_sh(NODE, "nginx -t", check=False).returncode == 0
    on(NODE, "alpha", "v1")
    node_sh(NODE, "docker rm -f openwebui-gamma >/dev/null 2>&1; rm -f /etc/ssl/gamma.pem /etc/ssl/gamma.key")
    deploy(fresh, "v1")


def test_a_port_change_switches_the_site_only_once_the_new_container_is_ready(fresh):
    moved = json.dumps({"tenant_tenants": [{**ALPHA, "port": 3011}, TENANTS[NODE][1]]})
    run = deploy(fresh, "v1", "-e", moved)
    assert run.returncode == 0, run.output[-3000:]
    assert "127.0.0.1:3011" in node_sh(NODE, "cat /etc/nginx/conf.d/pinned-release-alpha.conf").stdout
    assert read_sentinel(NODE, ALPHA) == "v1-data"
    deploy(fresh, "v1")


def test_while_a_tenant_is_replaced_nginx_answers_503_with_retry_after_never_502(fresh):
    """Requests to alpha during its upgrade: 200, or 503 + Retry-After from the maintenance page; no 502, no error."""
    import threading
    import urllib.error
    import urllib.request

    from tests.support.lab import NODES

    seen: list = []
    stop = threading.Event()

    def hammer():
        url = f"http://127.0.0.1:{NODES[NODE].http_port}/health"
        while not stop.is_set():
            request = urllib.request.Request(url, headers={"Host": ALPHA["domain"]})
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    seen.append((answer.status, None))
            except urllib.error.HTTPError as error:
                seen.append((error.code, error.headers.get("Retry-After")))
            except OSError as error:
                seen.append((-1, str(error)))
            time.sleep(0.01)

    worker = threading.Thread(target=hammer, daemon=True)
    worker.start()
    try:
        run = deploy(fresh, "v2")
    finally:
        stop.set()
        worker.join()
    assert run.returncode == 0, run.output[-3000:]
    statuses = {status for status, _retry in seen}
    assert 503 in statuses, "the upgrade was never observed (the maintenance answer did not show)"
    assert statuses <= {200, 503}, [s for s in seen if s[0] not in (200, 503)][:5]
    assert all(retry == "5" for status, retry in seen if status == 503), "a 503 without Retry-After"
    assert seen[-1][0] == 200
