# SPDX-License-Identifier: GPL-3.0-or-later
"""adopt_inventory on the controller, run by ansible-playbook against a real inventory folder (no lab node needed):
a host file is moved into the host's folder, not hidden by it; a merge keeps the secrets adopted before; a merge
that would leave two release_tenants lists is refused, writing nothing; inline vault values survive a merge."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "b" * 64
VAULT_PASSWORD = "adopt-files-test"


def entry(container: str, port: int, key: str) -> dict:
    return {"container": container, "image": "repo:0.12.0", "digest_ref": f"repo@{DIGEST}", "env": {},
            "secrets": {"WEBUI_SECRET_KEY": key}, "secret_key_source": "env",
            "data": {"kind": "volume", "name": f"{container}-data", "source": f"/v/{container}", "destination": "/d",
                     "subpath": ""},
            "ports": [{"host_ip": "0.0.0.0", "host_port": port}], "domains": [f"{container}.example.com"],  # noqa: S104
            "sites": [], "restart_policy": "no", "memory": None, "problems": [], "changes": []}  # fmt: skip


class Inventory:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "host_vars").mkdir(parents=True)
        (folder / "hosts.ini").write_text("prod9 ansible_connection=local\n")
        self.password = folder.parent / "vault-password"
        self.password.write_text(VAULT_PASSWORD + "\n")
        (folder.parent / "adopt.yml").write_text(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - pinned.release.adopt_inventory:\n"
            "        results: \"{{ lookup('file', results_file) | from_json }}\"\n"
            f"        inventory_dir: {folder}\n        report_dir: {folder}/reports\n"
            "        existing: \"{{ existing | default('refuse') }}\"\n"
        )

    def adopt(self, *containers: dict, existing: str = "refuse") -> subprocess.CompletedProcess:
        results = self.folder.parent / "results.json"
        results.write_text(json.dumps({"prod9": {"containers": list(containers), "conflicts": []}}))
        return self.run("ansible-playbook", "-i", str(self.folder / "hosts.ini"), str(self.folder.parent / "adopt.yml"),
                        "-e", f"results_file={results}", "-e", f"existing={existing}")  # fmt: skip

    def run(self, *command: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        return subprocess.run([*command, "--vault-password-file", str(self.password)], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False, timeout=300)  # fmt: skip

    def host_vars(self) -> dict:
        shown = self.run("ansible-inventory", "-i", str(self.folder / "hosts.ini"), "--host", "prod9")
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout)

    def secrets(self) -> dict:
        shown = self.run("ansible-vault", "view", str(self.folder / "host_vars/prod9/adopted_secrets.yml"))
        assert shown.returncode == 0, shown.stderr
        return yaml.safe_load(shown.stdout)["vault_adopted_secrets"]


@pytest.fixture
def inventory(tmp_path) -> Inventory:
    return Inventory(tmp_path / "inventory")


def test_a_host_file_is_moved_into_the_host_folder_not_hidden_by_it(inventory):
    host_file = inventory.folder / "host_vars/prod9.yml"
    host_file.write_text("---\nsite_note: kept by adoption\n")
    run = inventory.adopt(entry("acme", 3001, "k-acme"))
    assert run.returncode == 0, run.stdout[-3000:]
    assert not host_file.exists()
    assert (inventory.folder / "host_vars/prod9/prod9.yml").read_text() == "---\nsite_note: kept by adoption\n"
    seen = inventory.host_vars()
    assert seen["site_note"] == "kept by adoption", "Ansible no longer reads the host's own variables"
    assert [t["name"] for t in seen["release_tenants"]] == ["acme"]
    assert inventory.secrets() == {"acme": {"WEBUI_SECRET_KEY": "k-acme"}}


def test_a_merge_keeps_the_secrets_adopted_before(inventory):
    assert inventory.adopt(entry("acme", 3001, "k-acme")).returncode == 0
    run = inventory.adopt(entry("acme", 3001, "k-acme-changed"), entry("globex", 3002, "k-globex"), existing="merge")
    assert run.returncode == 0, run.stdout[-3000:]
    assert [t["name"] for t in inventory.host_vars()["release_tenants"]] == ["acme", "globex"]
    assert inventory.secrets() == {"acme": {"WEBUI_SECRET_KEY": "k-acme"}, "globex": {"WEBUI_SECRET_KEY": "k-globex"}}


def test_a_merge_that_would_leave_two_lists_is_refused_and_writes_nothing(inventory):
    host_file = inventory.folder / "host_vars/prod9.yml"
    host_file.write_text("---\nrelease_tenants:\n  - name: initech\n    domain: initech.example.com\n    port: 3005\n")
    run = inventory.adopt(entry("acme", 3001, "k-acme"), existing="merge")
    assert run.returncode != 0
    assert f"{host_file} declares release_tenants for prod9: merging writes one list to" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert host_file.exists()
    assert not (inventory.folder / "host_vars/prod9").exists()
    assert not (inventory.folder / "reports").exists()


def test_inline_vault_values_survive_a_merge(inventory):
    encrypted = inventory.run("ansible-vault", "encrypt_string", "oauth-secret-value", "--name", "OAUTH_CLIENT_SECRET")
    assert encrypted.returncode == 0, encrypted.stderr
    declared = inventory.folder / "host_vars/prod9/release_tenants.yml"
    declared.parent.mkdir()
    declared.write_text("---\nrelease_tenants:\n  - name: initech\n    domain: initech.example.com\n    port: 3005\n"
                        "    secrets:\n      " + encrypted.stdout.strip().replace("\n", "\n      ") + "\n")  # fmt: skip
    run = inventory.adopt(entry("acme", 3001, "k-acme"), existing="merge")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "oauth-secret-value" not in declared.read_text()
    tenants = inventory.host_vars()["release_tenants"]
    assert [t["name"] for t in tenants] == ["initech", "acme"]
    shown = inventory.run("ansible", "-i", str(inventory.folder / "hosts.ini"), "prod9", "-m", "ansible.builtin.debug",
                          "-a", "msg={{ release_tenants[0].secrets.OAUTH_CLIENT_SECRET }}")  # fmt: skip
    assert "oauth-secret-value" in shown.stdout, shown.stdout + shown.stderr


def templated(inventory: Inventory, expression: str) -> subprocess.CompletedProcess:
    """``expression`` as a deploy templates it, for the adopted host."""
    return inventory.run("ansible", "-i", str(inventory.folder / "hosts.ini"), "prod9", "-m", "ansible.builtin.debug",
                         "-a", json.dumps({"msg": expression}))  # fmt: skip


def test_a_value_with_a_template_marker_is_data_never_jinja(inventory, tmp_path):
    """A hand-started container's env is data: a lookup in a value never runs on the controller, and an Open WebUI
    prompt template ({{CONTEXT}}) is not an undefined variable; the same for a secret value."""
    ran = tmp_path / "the-lookup-ran"
    acme = entry("acme", 3001, "k-{{ nope }}")
    acme["env"] = {"RAG_TEMPLATE": "Answer from {{CONTEXT}} only", "HOOK": f"{{{{ lookup('pipe', 'touch {ran}') }}}}"}
    acme["domains"] = [f"acme{{{{ lookup('pipe', 'touch {ran}') }}}}.example.com"]
    run = inventory.adopt(acme)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "!unsafe" in (inventory.folder / "host_vars/prod9/release_tenants.yml").read_text()
    shown = templated(inventory, "{{ release_tenants[0] }} {{ release_tenants[0].secrets.WEBUI_SECRET_KEY }}")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "Answer from {{CONTEXT}} only" in shown.stdout
    assert "k-{{ nope }}" in shown.stdout
    assert not ran.exists(), "a value adopted from a container ran as a template on the controller"
    merged = inventory.adopt(entry("globex", 3002, "k-globex"), existing="merge")
    assert merged.returncode == 0, merged.stdout[-3000:]
    again = templated(inventory, "{{ release_tenants[0].env.RAG_TEMPLATE }} {{ vault_adopted_secrets.acme }}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Answer from {{CONTEXT}} only" in again.stdout, "a merge made an adopted value a template again"
    assert "k-{{ nope }}" in again.stdout
    assert not ran.exists()


@pytest.mark.parametrize("where", ["hosts file", "group_vars"])
def test_release_tenants_declared_outside_host_vars_is_refused_and_nothing_is_written(inventory, where):
    """Written in host_vars, the adopted list would hide the other one: the next deploy would remove its sites."""
    declared = '[{"name": "initech", "domain": "initech.example.com", "port": 3005}]'
    if where == "hosts file":
        (inventory.folder / "hosts.ini").write_text(f"prod9 ansible_connection=local release_tenants='{declared}'\n")
    else:
        (inventory.folder / "group_vars").mkdir()
        (inventory.folder / "group_vars/all.yml").write_text(f"---\nrelease_tenants: {declared}\n")
    for existing in ("refuse", "merge"):
        run = inventory.adopt(entry("acme", 3001, "k-acme"), existing=existing)
        assert run.returncode != 0
        assert "release_tenants for prod9 is declared in the inventory's hosts file or group_vars" in run.stdout
        assert "Traceback" not in run.stdout + run.stderr
        assert not (inventory.folder / "host_vars/prod9").exists()
        assert not (inventory.folder / "reports").exists()


def test_a_run_that_died_between_the_two_files_is_finished_by_a_merge(inventory):
    """The secrets file is written before the tenants that name it; a tenant declared without its secrets gets them."""
    assert inventory.adopt(entry("acme", 3001, "k-acme")).returncode == 0
    (inventory.folder / "host_vars/prod9/adopted_secrets.yml").unlink()  # as if the run had died before writing it
    run = inventory.adopt(entry("acme", 3001, "k-acme"), existing="merge")
    assert run.returncode == 0, run.stdout[-3000:]
    assert inventory.secrets() == {"acme": {"WEBUI_SECRET_KEY": "k-acme"}}


def test_a_folder_that_cannot_be_made_stops_adoption_before_anything_moves(inventory):
    host_file = inventory.folder / "host_vars/prod9.yml"
    host_file.write_text("---\nsite_note: kept\n")
    (inventory.folder / "reports").write_text("a file where the reports folder goes")
    run = inventory.adopt(entry("acme", 3001, "k-acme"))
    assert run.returncode != 0
    assert f"cannot make the folder {inventory.folder / 'reports'} (File exists): nothing was written" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert host_file.exists(), "the host file was moved although nothing could be written"
    assert not (inventory.folder / "host_vars/prod9").exists(), "an empty host folder would hide the host file"
    assert inventory.host_vars()["site_note"] == "kept"
