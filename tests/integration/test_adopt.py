# SPDX-License-Identifier: GPL-3.0-or-later
"""Adopting a fleet started by hand (lab/lab.sh legacy-fleet: the real Open WebUI run by tag, named volumes, ports
on 0.0.0.0, env on the command line, one tenant whose key the app generated inside its container): adopt.yml in
check mode writes nothing, then writes the tenants, the vaulted secrets and a report; the first deploy replaces each
container on the same digest, on its data, with its key: a login from before adoption still works."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.support.lab import ROOT, lab_script, node_sh, registry_digest
from tests.support.openwebui import OpenWebUI
from tests.support.workflow import LAB_VARS, assert_no_secret_in, make_workspace, reset_nodes

NODE = "prod2"
REPO = "pinned/open-webui"
OLD, NEW = "0.12.0", "0.12.4"
LEGACY = ("acme", "hooli")
ADMIN = LAB_VARS["release_checklist_variables"]


@pytest.fixture(scope="module")
def adopt_ws(tmp_path_factory, lab):
    reset_nodes()
    ws = make_workspace(tmp_path_factory.mktemp("adopt"), app="open-webui")
    (ws.directory / f"host_vars/{NODE}.yml").unlink()  # a host pinned.release has never managed
    password = ws.directory.parent / "vault-password"
    password.write_text("adoption-test-vault-password\n")
    lab_script("legacy-fleet", NODE)
    users = {}
    for name in LEGACY:
        app = OpenWebUI(NODE, f"{name}.legacy.lab")
        app.wait_ready()
        token = app.admin_token(ADMIN["admin_email"], ADMIN["admin_password"])
        app.write_function(token, f"legacy_{name}")
        users[name] = (app, token)
    keys = [
        json.loads(node_sh(NODE, "docker inspect legacy-acme").stdout)[0]["Config"]["Env"],
        node_sh(NODE, "docker exec legacy-hooli cat /app/backend/.webui_secret_key").stdout.strip(),
    ]
    ws.state = {"users": users, "vault": ["--vault-password-file", str(password)],
                "keys": [e.split("=", 1)[1] for e in keys[0] if e.startswith("WEBUI_SECRET_KEY=")] + [keys[1]]}  # fmt: skip
    assert all(ws.state["keys"]), "both legacy tenants have a key"
    yield ws
    for run in ws.runs:
        assert_no_secret_in(run.output)
        assert not [k for k in ws.state["keys"] if k in run.output], "a legacy key in a playbook's output"
    reset_nodes()


def host_vars(ws) -> list:
    folder = ws.directory / f"host_vars/{NODE}"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_check_mode_shows_the_plan_and_writes_nothing(adopt_ws):
    run = adopt_ws.play("playbooks/adopt.yml", "-l", NODE, "--check", *adopt_ws.state["vault"])
    assert run.returncode == 0, run.output[-3000:]
    assert "legacy-acme" in run.text
    assert "legacy-hooli" in run.text
    assert host_vars(adopt_ws) == []
    assert not (adopt_ws.directory / ".release_state/adoption").exists()


def test_without_a_vault_password_it_refuses_and_writes_nothing(adopt_ws):
    run = adopt_ws.play("playbooks/adopt.yml", "-l", NODE)
    assert run.returncode != 0
    assert "no vault password was given: run with --vault-id adopt@prompt" in run.text
    assert host_vars(adopt_ws) == []


def test_adoption_writes_the_tenants_the_vaulted_secrets_and_a_report(adopt_ws):
    run = adopt_ws.play("playbooks/adopt.yml", "-l", NODE, *adopt_ws.state["vault"])
    assert run.returncode == 0, run.output[-3000:]
    assert host_vars(adopt_ws) == ["adopted_secrets.yml", "release_tenants.yml"]
    folder = adopt_ws.directory / f"host_vars/{NODE}"
    tenants = yaml.safe_load((folder / "release_tenants.yml").read_text())["release_tenants"]
    digest = registry_digest(OLD, REPO)
    assert [(t["name"], t["domain"], t["port"]) for t in tenants] == [
        ("legacy-acme", "acme.legacy.lab", 3101),
        ("legacy-hooli", "hooli.legacy.lab", 3102),
    ]
    for entry in tenants:
        assert entry["image"].endswith(f"@{digest}"), "adopted on the digest it ran, no version change"
        assert entry["adopt_from"]["container"] == entry["name"]
        assert entry["adopt_from"]["data"] == f"/var/lib/docker/volumes/{entry['name']}-data/_data"
        assert list(entry["secrets"]) == ["WEBUI_SECRET_KEY"]
    assert (folder / "adopted_secrets.yml").read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    report = (adopt_ws.directory / f".release_state/adoption/{NODE}.md").read_text()
    assert "## legacy-hooli -> tenant `legacy-hooli`" in report
    assert "(the session key read from the file the app generated in the container)" in report
    assert "port 3101 moves from 0.0.0.0 to loopback behind nginx" in report
    assert "delete the hand-written nginx site /etc/nginx/conf.d/legacy-acme.conf and reload nginx" in report
    assert "delete the `image` of tenant `legacy-hooli` in host_vars/prod2/release_tenants.yml" in report
    for text in (report, (folder / "release_tenants.yml").read_text()):
        assert not [k for k in adopt_ws.state["keys"] if k in text], "a secret in clear"


def test_an_existing_declaration_is_never_overwritten(adopt_ws):
    before = (adopt_ws.directory / f"host_vars/{NODE}/release_tenants.yml").read_text()
    run = adopt_ws.play("playbooks/adopt.yml", "-l", NODE, *adopt_ws.state["vault"])
    assert run.returncode != 0
    assert "already declares release_tenants for prod2: nothing was written" in run.text
    assert (adopt_ws.directory / f"host_vars/{NODE}/release_tenants.yml").read_text() == before


def test_the_first_deploy_keeps_the_digest_the_data_and_the_logins(adopt_ws):
    digest = adopt_ws.cycle(OLD, *adopt_ws.state["vault"])
    for name in LEGACY:
        state = json.loads(node_sh(NODE, f"docker inspect openwebui-legacy-{name}").stdout)[0]
        image = json.loads(node_sh(NODE, f"docker image inspect {state['Image']}").stdout)[0]
        assert any(d.endswith(f"@{digest}") for d in image["RepoDigests"]), "the same digest it ran"
        assert state["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
        app, token = adopt_ws.state["users"][name]
        app.wait_ready()
        assert app.token_works(token), f"{name}: a login from before adoption no longer works (its key changed)"
        assert app.has_function(token, f"legacy_{name}"), f"{name}: its data did not come along"
    assert node_sh(NODE, "docker ps -aq --filter name=^legacy-").stdout.strip() == "", "the hand-started ones are gone"
    volumes = node_sh(NODE, "docker volume ls -q").stdout.split()
    assert {"legacy-acme-data", "legacy-hooli-data"} <= set(volumes), "their data is never deleted"


def test_adopted_tenants_then_upgrade_and_roll_back_like_any_other(adopt_ws):
    """Following the report: the hand-written sites go, the tenants leave their own digest for the release pin."""
    node_sh(NODE, "rm /etc/nginx/conf.d/legacy-*.conf && nginx -t 2>/dev/null && nginx -s reload")
    declared = adopt_ws.directory / f"host_vars/{NODE}/release_tenants.yml"
    tenants = yaml.safe_load(declared.read_text())
    for entry in tenants["release_tenants"]:
        del entry["image"]
    declared.write_text(yaml.safe_dump(tenants, sort_keys=False))
    adopt_ws.release(NEW)
    for playbook, args in (("deploy.yml", ["-l", "test"]), ("promote.yml", []), ("deploy.yml", ["-l", NODE])):
        run = adopt_ws.play(f"playbooks/{playbook}", *args, *adopt_ws.state["vault"])
        assert run.returncode == 0, f"{playbook} {args}:\n{run.output[-4000:]}"
    for name in LEGACY:
        app, token = adopt_ws.state["users"][name]
        assert app.version() == NEW
        assert app.token_works(token), f"{name}: the upgrade logged its users out"
        assert app.has_function(token, f"legacy_{name}")
        app.write_function(token, f"after_upgrade_{name}")
    run = adopt_ws.play("playbooks/rollback.yml", "-l", NODE, "-e", "reason='adoption test'", *adopt_ws.state["vault"])
    assert run.returncode == 0, run.output[-4000:]
    for name in LEGACY:
        app, token = adopt_ws.state["users"][name]
        assert app.version() == OLD
        assert app.token_works(token), f"{name}: the rollback logged its users out"
        assert app.has_function(token, f"legacy_{name}"), f"{name}: data from before adoption lost by the rollback"
        assert not app.has_function(token, f"after_upgrade_{name}"), "the data restored is from before the upgrade"


def test_a_host_without_a_docker_engine_is_one_clear_line(adopt_ws):
    command = ["ansible", "-i", str(adopt_ws.inventory), NODE, "-m", "pinned.release.adopt_facts",
               "-a", f"repository=127.0.0.1:5000/{REPO} docker_host=unix:///run/no-docker-here.sock",
               *adopt_ws.state["vault"]]  # fmt: skip
    run = subprocess.run(
        command, cwd=ROOT, env=adopt_ws.env(), capture_output=True, text=True, check=False, timeout=120
    )
    assert run.returncode != 0
    assert "cannot reach the Docker engine at unix:///run/no-docker-here.sock" in run.stdout, run.stdout + run.stderr
    assert "start dockerd" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
