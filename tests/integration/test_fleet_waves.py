# SPDX-License-Identifier: GPL-3.0-or-later
"""Production rollouts in waves on a lab fleet of 8 production hosts (lab/lab.sh up --production-nodes 8).

release_waves [1, "25%", "100%"] on 8 hosts is a canary, then 2 hosts, then 5. A host that fails in the second wave
stops the rollout with the default failure budget (0), and the notification says which hosts are done, put back and
not reached; with a budget of 50% the rollout goes on past it. release_waves set in inventory, where Ansible does not
read a play's serial, is refused before the first batch it would get wrong changes anything.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.support.lab import ROOT, lab_script, node_sh
from tests.support.receivers import WebhookReceiver
from tests.support.workflow import assert_no_secret_in, ensure_fleet, fleet_workspace

pytestmark = pytest.mark.exclusive_lab  # the fleet's nodes share the machine's CPUs with every cell

PRODUCTION_NODES = 8
WAVES = json.dumps({"release_waves": [1, "25%", "100%"]})
CUT_OFF = "prod3"  # in the second wave: it cannot reach the registry, so it cannot pull the release
FORWARDER = "TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr"  # the node's way to the lab registry (lab/node)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    ensure_fleet(PRODUCTION_NODES)
    lab_script("reset-tenants", cell="fleet")
    space = fleet_workspace(tmp_path_factory.mktemp("fleet"), PRODUCTION_NODES)
    space.hook = WebhookReceiver()
    target = {"name": "ops-webhook", "type": "webhook", "url": space.hook.url("/hook")}
    (space.directory / "group_vars/all/notify.yml").write_text(
        yaml.safe_dump({"release_notify_targets": [target], "release_notify_timeout": 2})
    )
    yield space
    reconnect(space)
    for run in space.runs:
        assert_no_secret_in(run.output)
    assert_no_secret_in(json.dumps([post["body"] for post in space.hook.posts]))
    space.hook.close()
    lab_script("reset-tenants", cell="fleet")
    space.release("v1")


def cut_off(space, digest: str) -> None:
    """CUT_OFF loses its way to the registry (its forwarder stopped), and the release's image if it had it."""
    repository = space.repository
    space.forwarder = node_sh(
        CUT_OFF, "pgrep -af '[s]ocat TCP-LISTEN:5000' | sed 's/^[0-9]* //'", nodes=space.nodes
    ).stdout.strip()
    assert space.forwarder.startswith(f"socat {FORWARDER} TCP:"), space.forwarder
    node_sh(CUT_OFF, f"pkill -f '[s]ocat TCP-LISTEN:5000'; docker image rm {repository}@{digest} >/dev/null 2>&1; true",
            nodes=space.nodes)  # fmt: skip


def reconnect(space) -> None:
    forwarder = getattr(space, "forwarder", "")
    if forwarder and not node_sh(CUT_OFF, "pgrep -f '[s]ocat TCP-LISTEN:5000'", nodes=space.nodes, check=False).stdout:
        node_sh(CUT_OFF, f"setsid nohup {forwarder} </dev/null >/dev/null 2>&1 &", nodes=space.nodes)


def digests_on(space, hosts) -> dict:
    """{host: the digest label of its first tenant's container, or None}."""
    found = {}
    for host in hosts:
        names = node_sh(
            host, "docker ps -a --filter label=pinned.release.managed --format '{{.Names}}'", nodes=space.nodes
        )
        first = sorted(names.stdout.split())[0] if names.stdout.split() else None
        label = node_sh(host, f"docker inspect -f '{{{{index .Config.Labels \"pinned.release.digest\"}}}}' {first}",
                        nodes=space.nodes, check=False).stdout.strip() if first else ""  # fmt: skip
        found[host] = label or None
    return found


def test_a_failed_host_in_a_wave_stops_the_next_waves_and_the_notification_says_who_is_where(fleet):
    v1 = fleet.cycle("v1", "-e", WAVES)
    hosts = [f"prod{i}" for i in range(1, PRODUCTION_NODES + 1)]
    assert set(digests_on(fleet, hosts).values()) == {v1}
    assert len(fleet.told("rollout")) == 1, "waves that went well before the last are not told"
    first = fleet.told("rollout")[-1]
    assert first["status"] == "ok"
    assert first["title"].endswith(f"finished on {PRODUCTION_NODES} host(s)")

    v2 = fleet.release("v2")
    for step in (("playbooks/deploy.yml", "-l", "test"), ("playbooks/promote.yml",)):
        assert fleet.play(*step).returncode == 0, step
    cut_off(fleet, v2)
    run = fleet.play("playbooks/deploy.yml", "-l", "production", "-e", WAVES)
    assert run.returncode != 0, run.output[-3000:]
    on = digests_on(fleet, hosts)
    assert [on[h] for h in ("prod1", "prod2")] == [v2, v2], on  # the canary and wave 2's good host
    assert on[CUT_OFF] == v1, on  # put back
    assert {on[h] for h in hosts[3:]} == {v1}, on  # wave 3 not reached
    told = fleet.told("rollout")[-1]
    assert told["status"] == "failed", told
    assert told["title"].endswith("STOPPED in wave 2 of 3: failed on prod3"), told["title"]
    lines = told["text"].splitlines()
    assert "done (2): prod1, prod2" in lines, told["text"]
    assert "put back (1): prod3" in lines, told["text"]
    assert "not reached (5): prod4, prod5, prod6, prod7, prod8" in lines, told["text"]

    # With a budget of 50% a wave of two may lose one host: the rollout goes on and says so, then finishes.
    told_before = len(fleet.told("rollout"))
    run = fleet.play("playbooks/deploy.yml", "-l", "production", "-e", WAVES, "-e", "release_max_fail_percentage=50")
    assert run.returncode != 0, "prod3 failed, so the run fails even within the budget"
    on = digests_on(fleet, hosts)
    assert on[CUT_OFF] == v1, on
    assert {on[h] for h in hosts if h != CUT_OFF} == {v2}, on
    assert len(fleet.told("rollout")) == told_before + 2, "told after the wave that lost prod3 and after the last"
    going_on, finished = fleet.told("rollout")[-2:]
    assert going_on["status"] == "warning"
    assert "going on after wave 2 of 3: failed on prod3" in going_on["title"]
    assert finished["status"] == "warning", finished
    assert f"finished on {PRODUCTION_NODES - 1} of {PRODUCTION_NODES} host(s): failed on prod3" in finished["title"]
    assert "within its failure budget (50% of a wave)" in finished["title"]


@pytest.mark.parametrize(
    ("in_inventory", "sees"),
    [
        ({"release_waves": [1, "50%"]}, "waves [1, '50%'], failure budget 0%"),
        ({"release_max_fail_percentage": 50}, "waves [1, 5], failure budget 50%"),
    ],
)
def test_a_rollout_shape_set_in_inventory_is_refused_before_anything_changes(fleet, in_inventory, sees):
    """Ansible reads serial and max_fail_percentage from -e only: set in group_vars, they would be ignored by it while
    the role (and the notification) took them as given."""
    reconnect(fleet)
    (fleet.directory / "group_vars/all/shape.yml").write_text(yaml.safe_dump(in_inventory))
    try:
        run = fleet.play("playbooks/deploy.yml", "-l", "production")
    finally:
        (fleet.directory / "group_vars/all/shape.yml").unlink()
    assert run.returncode != 0
    assert (
        f'the play runs "Roll the pin out to production in waves [1, 5], failure budget 0%", but this host sees {sees}'
        in run.text
    ), run.output[-2000:]
    assert "give release_waves and release_max_fail_percentage with -e, not in inventory" in run.text
    assert (
        digests_on(fleet, [CUT_OFF])[CUT_OFF] != fleet.pin()["release_pin"]["digest"]
    )  # prod3 is still not on the pin
    assert "TASK [pinned.release.tenant" not in run.output  # refused on the first batch, before any host changed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('{"release_serial": [1, 5]}', "release_serial is now release_waves: rename it"),
        ('{"release_waves": [1, 0]}', "release_waves: wave 2 (0) is neither a number of hosts (1 or more) nor a percentage"),
        ('{"release_waves": ["25x"]}', "release_waves: wave 1 ('25x') is neither"),
        ("release_max_fail_percentage=150", "release_max_fail_percentage: '150' is not a whole number from 0 to 100"),
    ],
)  # fmt: skip
def test_a_rollout_shape_ansible_would_misread_is_refused_in_one_line(fleet, extra, message):
    run = fleet.play("playbooks/deploy.yml", "-l", "production", "-e", extra)
    assert run.returncode != 0
    assert message in run.text, run.output[-2000:]
    assert "Traceback" not in run.output
    assert "probably a bug" not in run.output


def test_a_stopped_fleet_leaves_the_lab_up_and_the_next_fleet_test_starts_it_again(fleet):
    """make lab does not start the fleet (a restarted machine has it exited): status says so and does not fail,
    or every integration test would fail its lab check; ensure_fleet starts it again."""
    last = f"pinned-lab-fleet-prod{PRODUCTION_NODES}"
    subprocess.run(["docker", "stop", "-t", "1", last], check=True, capture_output=True)
    try:
        status = subprocess.run([str(ROOT / "lab/lab.sh"), "status"], capture_output=True, text=True, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
        assert (
            f"fleet-prod{PRODUCTION_NODES}   exited (fleet, on demand: lab/lab.sh up --production-nodes"
            in status.stdout
        )
    finally:
        ensure_fleet(PRODUCTION_NODES)
    status = lab_script("status")
    assert f"fleet-prod{PRODUCTION_NODES}   up (cell fleet" in status.stdout
