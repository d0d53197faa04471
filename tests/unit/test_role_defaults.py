# SPDX-License-Identifier: GPL-3.0-or-later
"""Role defaults that are expressions, rendered by Ansible's own templating: the wiring the unit tables of the module
take for granted (the module's rules are tested on their own in tests/unit/plugins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

from ansible_collections.pinned.release.plugins.plugin_utils._app_profiles import resolve
from tests.support.lab import run

ROOT = Path(__file__).resolve().parents[2]
TENANT_DEFAULTS = yaml.safe_load((ROOT / "roles/tenant/defaults/main.yml").read_text())


def rendered(name: str, variables: dict):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(TENANT_DEFAULTS[name]))


@pytest.mark.parametrize(
    ("variables", "protected"),
    [
        # the pin and the pin before it (the rollback target): their pre-upgrade snapshots survive any rotation
        ({"release_pin": {"digest": "sha256:b"}, "release_pin_history": [{"digest": "sha256:a"}, {"digest": "sha256:0"}]},
         ["sha256:b", "sha256:a"]),
        ({"release_pin": {"digest": "sha256:b"}, "release_pin_history": []}, ["sha256:b"]),
        ({}, []),  # a host with no pin yet protects nothing (the empty digest is dropped by the role's task)
    ],
)  # fmt: skip
def test_the_snapshots_a_rollback_needs_are_protected_by_default(variables, protected):
    assert [digest for digest in rendered("tenant_protect_digests", variables) if digest] == protected


TEST_DEPLOY_DEFAULTS = yaml.safe_load((ROOT / "roles/test_deploy/defaults/main.yml").read_text())


def test_the_test_hosts_are_brought_to_the_pin_read_from_the_pin_file(tmp_path):
    init_plugin_loader()  # the file lookup is a plugin
    pin_file = tmp_path / "release_pin.yml"
    expression = trust_as_template(TEST_DEPLOY_DEFAULTS["test_deploy_pin"])
    templar = Templar(loader=DataLoader(), variables={"release_pin_file": str(pin_file)})
    assert templar.template(expression) == {}, "nothing pinned yet: no step to a pin"
    pin_file.write_text("---\nrelease_pin:\n  image: repo@sha256:aaaa\n  digest: sha256:aaaa\n")
    assert templar.template(expression) == {"image": "repo@sha256:aaaa", "digest": "sha256:aaaa"}
    pin_file.write_text("---\n")
    assert templar.template(expression) == {}, "an empty pin file"
    assert Templar(loader=DataLoader(), variables={}).template(expression) == {}, "no pin file configured"


def test_the_roles_take_the_runtime_and_the_checklists_from_the_chosen_app_profile(tmp_path):
    """Through real Ansible (the lookup is the collection's): the tenant role's _tenant_app and smoke checks, and the
    test_deploy role's checklists, and the adopt role's layout and secret key, from release_app_profile with release_app over it."""
    playbook = tmp_path / "wiring.yml"
    playbook.write_text(
        yaml.safe_dump([{
            "hosts": "localhost", "gather_facts": False,
            "vars_files": [str(ROOT / f"roles/{role}/{kind}/main.yml") for role, kind in
                           (("tenant", "defaults"), ("tenant", "vars"), ("test_deploy", "defaults"),
                            ("adopt", "defaults"), ("adopt", "vars"))],
            "tasks": [{"ansible.builtin.copy": {"dest": str(tmp_path / "wired.json"), "content": "{{ wired | to_json }}"},
                       "vars": {"wired": {"app": "{{ _tenant_app }}", "smoke": "{{ tenant_smoke_checks }}",
                                          "before": "{{ test_deploy_checklist_before }}",
                                          "after": "{{ test_deploy_checklist }}",
                                          "adopt": {"data_path": "{{ adopt_data_path }}",
                                                    "container_port": "{{ adopt_container_port }}",
                                                    "container_prefix": "{{ adopt_container_prefix }}",
                                                    "secret_key_env": "{{ adopt_secret_key_env }}",
                                                    "secret_key_file": "{{ adopt_secret_key_file }}"}}}}],
        }])
    )  # fmt: skip
    for profile, overrides in (("generic-http", {"container_port": 5232}), (None, {"env": {"WEBUI_NAME": "Acme"}})):
        extra = {
            "release_app": overrides,
            "release_evidence_dir": str(tmp_path),
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            **({"release_app_profile": profile} if profile else {}),
        }
        result = run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook), "-e", json.dumps(extra)])
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        wired = json.loads((tmp_path / "wired.json").read_text())
        expected = resolve(profile or "open-webui", overrides)
        assert wired["app"] == expected["runtime"]
        assert (wired["before"], wired["after"]) == (expected["checklist_before"], expected["checklist"])
        health = {"name": "health through nginx", "path": expected["runtime"]["health_path"],
                  "json": expected["runtime"]["health_json"] or None}  # fmt: skip
        assert wired["smoke"] == [health]
        runtime, adoption = expected["runtime"], expected["adoption"]
        assert wired["adopt"] == {
            **{key: runtime[key] for key in ("data_path", "container_port", "container_prefix")},
            **{key: adoption[key] for key in ("secret_key_env", "secret_key_file")},
        }
