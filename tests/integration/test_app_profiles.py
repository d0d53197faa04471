# SPDX-License-Identifier: GPL-3.0-or-later
"""A second real app released with nothing but its app profile: WsgiDAV (PyPI; what it is sent, it keeps as files in
/data), built by lab/lab.sh in two versions, through test deploy -> promote -> production -> upgrade -> rollback.

The inventory says only ``release_app_profile: generic-http``, the app's repository and the tenants (beside where the
controller keeps the pin and the evidence): the port, data path, health check and testing checklist are the profile's.
The tests of this module run in order and build on each other's state, like a real release does.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.support.lab import CELL_INVENTORY, REGISTRY, ROOT, lab_script, node_sh, read_topology, registry_digest
from tests.support.workflow import Workspace, diagnostics, reset_nodes

REPOSITORY = f"{REGISTRY}/pinned/wsgidav"
OLD, NEW = "4.3.2", "4.3.3"  # lab/lab.sh's WSGIDAV_VERSIONS
NODES = ("test1", "prod1")
TENANT = {"name": "files", "port": 3011}
CONTAINER = "app-files"  # generic-http's container prefix
FILE = "/kept-across-the-upgrade.txt"
GENERIC_CHECKS = {
    "the app answers",
    "memory stays under 90% of the limit, and a second pass of the checks above grows it by 25% at most",
    "the tenant is isolated (not privileged, its own namespaces, folder and port, the port on loopback)",
    "the app answers again after a restart (it starts from its data folder alone)",
}


def domain(node: str) -> str:
    return f"files.{node}.lab"


@pytest.fixture(scope="module")
def app_ws(tmp_path_factory, lab):
    """An inventory of its own on this cell's test1 and prod1: the profile, the repository, one tenant each."""
    reset_nodes()
    directory = tmp_path_factory.mktemp("app_profiles") / "inventory"
    (directory / "group_vars/all").mkdir(parents=True)
    (directory / "host_vars").mkdir()
    shutil.copy(ROOT / "inventories/lab/group_vars/all/connection.yml", directory / "group_vars/all/connection.yml")
    (directory / "group_vars/all/release.yml").write_text(
        "---\n"
        + yaml.safe_dump({"release_app_profile": "generic-http", "release_app_repository": REPOSITORY}, sort_keys=False)
        + "# Where the controller keeps the pin and the evidence.\n"
        + "release_inventory_dir: \"{{ ansible_inventory_sources[0] | dirname }}\"\n"
        + "release_pin_file: \"{{ release_inventory_dir }}/group_vars/production/release_pin.yml\"\n"
        + "release_state_dir: \"{{ release_inventory_dir }}/.release_state\"\n"
        + "release_evidence_dir: \"{{ release_state_dir }}/evidence\"\n"
    )  # fmt: skip
    for node in NODES:
        tenant = {**TENANT, "domain": domain(node)}
        (directory / f"host_vars/{node}.yml").write_text(yaml.safe_dump({"release_tenants": [tenant]}))
    cell_hosts = CELL_INVENTORY.read_text().splitlines()
    kept = [line for line in cell_hosts if not line.strip() or line.startswith(("[", "#", "lab_", "release_"))
            or line.split()[0] in NODES]  # fmt: skip
    (directory / "hosts.ini").write_text("\n".join(kept) + "\n")
    assert set(read_topology(directory / "hosts.ini")) == set(NODES)
    workspace = Workspace(directory)
    yield workspace
    lab_script("release-tag", OLD)


def must(ws: Workspace, playbook: str, *args: str) -> None:
    run = ws.play(playbook, *args)
    assert run.returncode == 0, f"{playbook} {args} failed:\n{run.output[-4000:]}\n{diagnostics(NODES)}"


def running(node: str) -> dict:
    """The tenant's container: the digest its image was pulled by, its label, its state and health."""
    data = json.loads(node_sh(node, f"docker inspect {CONTAINER}").stdout)[0]
    image = json.loads(node_sh(node, f"docker image inspect {data['Image']}").stdout)[0]
    digests = [d.split("@")[1] for d in image.get("RepoDigests") or [] if d.startswith(REPOSITORY + "@")]
    return {
        "digest": digests[0] if digests else None,
        "label": data["Config"]["Labels"].get("pinned.release.digest"),
        "version": image["Config"]["Labels"].get("org.opencontainers.image.version"),
        "status": data["State"]["Status"],
        "mounts": [(m["Source"], m["Destination"]) for m in data["Mounts"]],
        "ports": data["HostConfig"]["PortBindings"],
    }


def webdav(node: str, method: str, path: str, data: str | None = None) -> tuple:
    """(HTTP status, body) of a request through the node's nginx with the tenant's Host header."""
    send = f"--data {data!r}" if data is not None else ""
    out = node_sh(
        node,
        f"curl -s -m 10 -X {method} {send} -H 'Host: {domain(node)}' -w '\\n%{{http_code}}' http://127.0.0.1{path}",
    ).stdout
    body, _sep, status = out.rpartition("\n")
    return int(status), body


def test_the_profile_alone_tests_promotes_and_deploys_the_app(app_ws):
    lab_script("release-tag", OLD)
    old = registry_digest(OLD, "pinned/wsgidav")
    must(app_ws, "playbooks/deploy.yml", "-l", "test")
    record = json.loads((app_ws.evidence_dir / f"{old.replace(':', '-')}.json").read_text())
    assert (record["digest"], record["passed"]) == (old, True)
    checks = record["hosts"]["test1"]["tenants"]["files"]["checks"]
    assert {c["name"] for c in checks if not c.get("skipped")} == GENERIC_CHECKS, "the profile's checklist ran"
    assert all(c["passed"] for c in checks), checks
    must(app_ws, "playbooks/promote.yml")
    assert app_ws.pin()["release_pin"]["digest"] == old
    must(app_ws, "playbooks/deploy.yml", "-l", "production")
    state = running("prod1")
    # The profile's contract: port 8080 published on loopback, the tenant's folder mounted at /data.
    assert (state["digest"], state["label"], state["version"], state["status"]) == (old, old, OLD, "running"), state
    assert state["ports"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(TENANT["port"])}]}, state
    assert [destination for _source, destination in state["mounts"]] == ["/data"], state
    assert webdav("prod1", "PUT", FILE, f"written on {OLD}")[0] == 201


def test_an_upgrade_runs_the_new_pin_and_keeps_the_data(app_ws):
    lab_script("release-tag", NEW)
    new = registry_digest(NEW, "pinned/wsgidav")
    must(app_ws, "playbooks/deploy.yml", "-l", "test")
    record = json.loads((app_ws.evidence_dir / f"{new.replace(':', '-')}.json").read_text())
    assert record["passed"] is True
    checks = record["hosts"]["test1"]["tenants"]["files"]["checks"]
    before = [(c["name"], c["passed"], bool(c.get("skipped"))) for c in checks if c["name"].startswith("before")]
    assert before == [("before the upgrade: the app answers before the upgrade", True, False)], (
        "the test host was on the pin, so the checks before the upgrade ran"
    )
    must(app_ws, "playbooks/promote.yml")
    must(app_ws, "playbooks/deploy.yml", "-l", "production")
    state = running("prod1")
    assert (state["digest"], state["label"], state["version"]) == (new, new, NEW), state
    assert webdav("prod1", "GET", FILE) == (200, f"written on {OLD}")
    history = app_ws.pin()["release_pin_history"]
    assert history[0]["digest"] == registry_digest(OLD, "pinned/wsgidav")


def test_rollback_puts_the_previous_digest_back_with_the_data(app_ws):
    run = app_ws.play("playbooks/rollback.yml", "-l", "production", "-e", "reason='generic-http rollback test'")
    assert run.returncode == 0, f"rollback failed:\n{run.output[-4000:]}\n{diagnostics(NODES)}"
    old = registry_digest(OLD, "pinned/wsgidav")
    state = running("prod1")
    assert (state["digest"], state["label"], state["version"], state["status"]) == (old, old, OLD, "running"), state
    assert webdav("prod1", "GET", FILE) == (200, f"written on {OLD}")
    assert app_ws.pin()["release_pin"]["digest"] == old
