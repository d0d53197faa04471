# SPDX-License-Identifier: GPL-3.0-or-later
"""Adoption on the controller: tenant names, declarations with vault references, what is held back, the report."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.pinned.release.plugins.module_utils._tenants import TENANT_NAME_RE
from ansible_collections.pinned.release.plugins.plugin_utils._adopt_inventory import (
    AdoptionError,
    Unsafe,
    check_vault,
    declaration,
    host_layout,
    host_plan,
    host_writes,
    tenant_name,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("container", "name"),
    [("openwebui-acme", "acme"), ("Acme_Corp", "acme-corp"), ("webui.globex.1", "webui-globex-1"), ("openwebui-", "openwebui"),
     ("___", "tenant"), ("x" * 60, "x" * 42)],
)  # fmt: skip
def test_tenant_name(container, name):
    assert tenant_name(container, "openwebui-") == name
    assert TENANT_NAME_RE.fullmatch(name), "a name the tenant rules take"


def entry(container="acme", problems=(), secrets=None, domains=("acme.example.com",), port=3001, sites=()):
    return {"container": container, "image": "repo:0.12.0", "digest_ref": f"repo@{DIGEST}", "env": {"WEBUI_NAME": "Acme"},
            "secrets": {"WEBUI_SECRET_KEY": "k-1"} if secrets is None else secrets, "secret_key_source": "file",
            "data": {"kind": "volume", "name": f"{container}-data", "source": "/v", "destination": "/app/backend/data",
                     "subpath": ""},
            "ports": [{"host_ip": "0.0.0.0", "host_port": port}], "domains": list(domains), "sites": list(sites),  # noqa: S104
            "restart_policy": "unless-stopped", "memory": "512m", "problems": list(problems),
            "changes": ["runs by tag (repo:0.12.0): pinned to its digest " + DIGEST]}  # fmt: skip


def test_a_declaration_keeps_the_digest_and_points_at_the_vault():
    tenant, secrets = declaration(entry(), "openwebui-")
    assert tenant == {"name": "acme", "domain": "acme.example.com", "port": 3001, "env": {"WEBUI_NAME": "Acme"},
                      "secrets": {"WEBUI_SECRET_KEY": "{{ vault_adopted_secrets['acme']['WEBUI_SECRET_KEY'] }}"},
                      "memory": "512m", "image": f"repo@{DIGEST}", "adopt_from": {"container": "acme", "data": "/v"}}  # fmt: skip
    assert secrets == {"WEBUI_SECRET_KEY": "k-1"}


def test_containers_with_problems_or_conflicts_are_held_back_and_the_report_says_why():
    found = {
        "containers": [entry(), entry("broken", problems=["its data (/app/backend/data) is inside the container"]),
                       entry("twin", domains=("acme.example.com",), port=3009)],
        "conflicts": ["acme and twin both claim domain acme.example.com: adopt one of them"],
    }  # fmt: skip
    plan = host_plan("prod1", found, "openwebui-")
    assert [t["name"] for t in plan["tenants"]] == []
    assert [e["container"] for e in plan["held_back"]] == ["acme", "broken", "twin"]
    assert "## broken -> tenant `broken`" in plan["report"]
    assert (
        "Not adopted until these are solved:\n- its data (/app/backend/data) is inside the container" in plan["report"]
    )
    assert "## Conflicts\n\n- acme and twin both claim domain acme.example.com" in plan["report"]
    assert "k-1" not in plan["report"]
    assert "(the session key read from the file the app generated in the container)" in plan["report"]
    assert "After the first deploy:" not in plan["report"], "nothing to do after a deploy that adopts nothing"


def test_a_clean_host_is_adopted_whole():
    globex = entry("globex", domains=("globex.example.com",), port=3002, secrets={})
    plan = host_plan("prod1", {"containers": [entry(), globex], "conflicts": []}, "")
    assert [t["name"] for t in plan["tenants"]] == ["acme", "globex"]
    assert plan["secrets"] == {"acme": {"WEBUI_SECRET_KEY": "k-1"}}
    assert "secrets" not in plan["tenants"][1]


def test_the_report_says_what_is_left_to_the_operator_after_the_first_deploy():
    acme = entry(sites=("/etc/nginx/conf.d/acme.conf",))
    report = host_plan("prod1", {"containers": [acme], "conflicts": []}, "")["report"]
    after = report.split("After the first deploy:\n", 1)[1].splitlines()
    assert after[:3] == [
        "- delete the hand-written nginx site /etc/nginx/conf.d/acme.conf and reload nginx: the managed site serves "
        "the domain now (until then nginx warns about a conflicting server_name)",
        "- it stays on the digest it ran: delete the `image` of tenant `acme` in host_vars/prod1/release_tenants.yml "
        "to put it on the release pin (the next deploy moves it there, snapshot first)",
        "- its old data (volume acme-data) is kept, never deleted: remove it yourself once you no longer need it",
    ]


def test_containers_that_become_one_tenant_are_all_held_back():
    """Acme, acme and ACME would write each other's secrets and data folder."""
    same = [entry("Acme", port=3001), entry("acme", port=3002), entry("ACME", port=3004)]
    plan = host_plan("prod1", {"containers": [*same, entry("cme", port=3003)], "conflicts": []}, "")
    assert [t["name"] for t in plan["tenants"]] == ["cme"], "a name inside another's is no conflict"
    assert [e["container"] for e in plan["held_back"]] == ["Acme", "acme", "ACME"]
    assert "Acme and acme and ACME both become tenant acme: rename one of them" in plan["report"]


def test_what_was_found_on_the_host_is_never_a_template_and_odd_env_names_are_held_back():
    found = {**entry(), "domains": ["{{ lookup('pipe', 'id') }}.example"], "env": {"A": "{{ x }}"},
             "tls": {"cert": "/etc/{{ x }}.pem", "key": "/k"},
             "data": {"kind": "bind", "name": None, "source": "/v/{{ y }}", "subpath": ""}}  # fmt: skip
    tenant, _secrets = declaration(found, "")
    marked = [tenant["domain"], tenant["env"]["A"], tenant["tls_cert"], tenant["adopt_from"]["data"]]
    assert all(isinstance(value, Unsafe) for value in marked), marked
    assert not isinstance(tenant["secrets"]["WEBUI_SECRET_KEY"], Unsafe), "the vault reference is the one template"
    odd = {**entry("odd", port=3010), "secrets": {"X_KEY'] ~ lookup('pipe','id') ~ x['": "v", "WEBUI_SECRET_KEY": "k"}}
    plan = host_plan("prod1", {"containers": [odd], "conflicts": []}, "")
    assert plan["tenants"] == []
    assert "its env has names that are not plain variable names" in plan["report"]


def test_a_certificate_found_in_the_hand_written_site_is_declared():
    tenant, _secrets = declaration({**entry(), "tls": {"cert": "/etc/ssl/a.pem", "key": "/etc/ssl/a.key"}}, "")
    assert (tenant["tls_cert"], tenant["tls_key"]) == ("/etc/ssl/a.pem", "/etc/ssl/a.key")


# ---------------------------------------------------------------- the files adoption writes, and writing them


def read_vars(path: str) -> dict:
    """A vars file as the action reads it ({} when absent), here without a vault."""
    data = yaml.safe_load(open(path).read()) if os.path.exists(path) else {}  # noqa: SIM115
    return data if isinstance(data, dict) else {}


def writes_for(inventory, *containers, existing="refuse", inventory_declares=False, encrypt=None):
    plan = host_plan("prod9", {"containers": list(containers), "conflicts": []}, "")
    layout = host_layout(str(inventory / "host_vars"), "prod9")
    return host_writes(plan, layout, str(inventory / "reports"), existing, read_vars, inventory_declares, encrypt)


@pytest.fixture
def inventory(tmp_path):
    (tmp_path / "host_vars").mkdir()
    return tmp_path


def test_a_new_host_gets_its_secrets_first_then_its_tenants_then_its_report(inventory):
    writes = writes_for(inventory, entry(), encrypt=lambda text: "$ANSIBLE_VAULT;" + str(len(text)))
    folder = inventory / "host_vars/prod9"
    assert [(path, mode) for path, _c, mode in writes.files] == [
        (str(folder / "adopted_secrets.yml"), 0o600),
        (str(folder / "release_tenants.yml"), 0o644),
        (str(inventory / "reports/prod9.md"), 0o644),
    ]
    assert writes.files[0][1].startswith("$ANSIBLE_VAULT;"), "the secrets go through the vault"
    assert writes.files[1][1].startswith("# Written by pinned.release adopt.yml from what ran on prod9; see ")
    assert (writes.moves, writes.changed()) == ([], True)
    in_clear = writes_for(inventory, entry())
    in_clear.write()
    assert writes_for(inventory, entry(), existing="merge").changed() is False, "a second merge changes nothing"


@pytest.mark.parametrize(
    ("layout", "existing", "inventory_declares", "error"),
    [
        ({"host_vars/prod9/release_tenants.yml": "release_tenants: [{name: initech}]"}, "refuse", False,
         "{inv}/host_vars/prod9/release_tenants.yml already declares release_tenants for prod9: nothing was written; "
         "move it aside, or re-run with -e adopt_existing=merge"),
        ({"host_vars/prod9.yml": "release_tenants: [{name: initech}]"}, "merge", False,
         "{inv}/host_vars/prod9.yml declares release_tenants for prod9: merging writes one list to "
         "{inv}/host_vars/prod9/release_tenants.yml and Ansible would use only one of the two"),
        ({}, "merge", True,
         "release_tenants for prod9 is declared in the inventory's hosts file or group_vars, not in host_vars/prod9/"),
        ({"host_vars/prod9.yml": "site_note: x"}, "refuse", True,
         "release_tenants for prod9 is declared in the inventory's hosts file or group_vars"),
    ],
)  # fmt: skip
def test_a_declaration_adoption_would_hide_or_overwrite_is_refused(
    inventory, layout, existing, inventory_declares, error
):
    for path, text in layout.items():
        (inventory / path).parent.mkdir(parents=True, exist_ok=True)
        (inventory / path).write_text(text)
    with pytest.raises(AdoptionError) as refused:
        writes_for(inventory, entry(), existing=existing, inventory_declares=inventory_declares)
    assert str(refused.value).startswith(error.format(inv=inventory)), str(refused.value)


def test_a_host_file_is_moved_into_the_folder_and_a_merge_keeps_the_secrets_adopted_before(inventory):
    (inventory / "host_vars/prod9.yml").write_text("site_note: kept\n")
    writes = writes_for(inventory, entry())
    assert writes.moves == [(str(inventory / "host_vars/prod9.yml"), str(inventory / "host_vars/prod9/prod9.yml"))]
    writes.write()
    assert (inventory / "host_vars/prod9/prod9.yml").read_text() == "site_note: kept\n"
    changed_key = {**entry(), "secrets": {"WEBUI_SECRET_KEY": "k-changed"}}
    globex = entry("globex", domains=("globex.example.com",), port=3002)
    merged = writes_for(inventory, changed_key, globex, existing="merge")
    secrets = yaml.safe_load(merged.files[0][1])["vault_adopted_secrets"]
    assert secrets == {"acme": {"WEBUI_SECRET_KEY": "k-1"}, "globex": {"WEBUI_SECRET_KEY": "k-1"}}
    tenants = yaml.safe_load(merged.files[1][1].split("---\n", 1)[1])["release_tenants"]
    assert [t["name"] for t in tenants] == ["acme", "globex"]


def test_a_folder_that_cannot_be_made_stops_before_anything_moves(inventory):
    (inventory / "host_vars/prod9.yml").write_text("site_note: kept\n")
    (inventory / "reports").write_text("a file where the reports folder goes")
    writes = writes_for(inventory, entry())
    with pytest.raises(AdoptionError, match=r"^cannot make the folder .*/reports \(File exists\): nothing was written"):
        writes.write()
    assert (inventory / "host_vars/prod9.yml").exists()
    assert not (inventory / "host_vars/prod9").exists(), "an empty host folder would hide the host file"


@pytest.mark.parametrize(
    ("secrets", "has_vault", "in_clear", "refused"),
    [(True, False, False, True), (True, True, False, False), (True, False, True, False), (False, False, False, False)],
)
def test_secrets_are_vaulted_unless_asked_in_clear(secrets, has_vault, in_clear, refused):
    plans = [{"secrets": {"acme": {"K": "v"}} if secrets else {}}]
    if refused:
        with pytest.raises(AdoptionError, match="no vault password was given: run with --vault-id adopt@prompt"):
            check_vault(plans, has_vault, in_clear)
    else:
        check_vault(plans, has_vault, in_clear)
