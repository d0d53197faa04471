# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-doc renders every module, filter and role fully; module docs agree with their argument specs;
the shipped inventories work from the controller as documented."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.lab import ROOT, run

MODULES = ["resolve_digest", "pin_digest", "verify_container", "tenant_rollout", "run_checklist"]
ROLES = ["tenant", "test_deploy", "production_deploy", "rollback", "promote", "adopt", "drift"]


def strings_only(value, path="doc"):
    """Descriptions must be text: a stray ': ' in YAML silently turns a sentence into a mapping."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("description", "short_description", "notes", "requirements") and not isinstance(
                item, (str, list)
            ):
                raise AssertionError(f"{path}.{key} is a {type(item).__name__}, not text")
            if key in ("description", "notes", "requirements") and isinstance(item, list):
                bad = [i for i in item if not isinstance(i, str)]
                assert not bad, f"{path}.{key} has a non-text item (a ': ' in YAML?): {bad[0]}"
            strings_only(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            strings_only(item, f"{path}[{index}]")


@pytest.mark.parametrize("module", MODULES)
def test_module_doc_renders_and_matches_argument_spec(module):
    text = run(["ansible-doc", "-t", "module", f"pinned.release.{module}"])
    assert text.returncode == 0, text.stderr
    assert "EXAMPLES:" in text.stdout
    assert "RETURN VALUES:" in text.stdout
    data = json.loads(run(["ansible-doc", "--json", "-t", "module", f"pinned.release.{module}"]).stdout)[
        f"pinned.release.{module}"
    ]
    strings_only(data)
    documented = set(data["doc"]["options"])
    argspec = json.loads(
        subprocess.run(
            [sys.executable, "-c", ARGSPEC.format(module=module)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout
    )  # fmt: skip
    assert documented == set(argspec), (
        f"documented but not in the spec: {documented - set(argspec)}; undocumented: {set(argspec) - documented}"
    )
    for name, spec in argspec.items():
        assert data["doc"]["options"][name].get("type", "str") == spec.get("type", "str"), name
        assert data["doc"]["options"][name].get("default") == spec.get("default"), name
    assert data["doc"]["attributes"]["check_mode"]["support"] in ("full", "partial", "none")


# Captures the argument spec a module hands to AnsibleModule, without running the module.
ARGSPEC = """
import json, sys
sys.path.insert(0, '.collections')
import ansible.module_utils.basic as basic
class Captured(Exception):
    pass
def capture(self, argument_spec, **kwargs):
    raise Captured(argument_spec)
basic.AnsibleModule.__init__ = capture
from ansible_collections.pinned.release.plugins.modules import {module} as m
try:
    m.main()
except Captured as c:
    print(json.dumps(c.args[0], default=str))
"""


@pytest.mark.parametrize("role", ROLES)
def test_role_doc_renders_from_argument_specs(role):
    text = run(["ansible-doc", "-t", "role", f"pinned.release.{role}"])
    assert text.returncode == 0, text.stderr
    assert "options" in text.stdout.lower()
    data = json.loads(run(["ansible-doc", "--json", "-t", "role", f"pinned.release.{role}"]).stdout)
    strings_only(data)


def filter_names() -> list:
    """Every filter the collection's filter plugins provide."""
    names = []
    for path in sorted((ROOT / "plugins/filter").glob("*.py")):
        namespace: dict = {}
        exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own plugin files
        names += sorted(namespace["FilterModule"]().filters())
    return names


def test_every_filter_is_listed_by_ansible_doc():
    listed = run(["ansible-doc", "-t", "filter", "--list", "--json", "pinned.release"])
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(listed.stdout)) == sorted(f"pinned.release.{n}" for n in filter_names())


@pytest.mark.parametrize("name", filter_names())
def test_every_filter_has_documentation(name):
    text = run(["ansible-doc", "--json", "-t", "filter", f"pinned.release.{name}"])
    assert text.returncode == 0, text.stderr
    data = json.loads(text.stdout)[f"pinned.release.{name}"]
    strings_only(data)
    assert data["doc"]["description"], name
    assert data["examples"].strip(), name
    assert data["return"]["_value"]["description"], name


@pytest.mark.parametrize("name", ["operator", "app_profile"])
def test_every_lookup_is_documented(name):
    text = run(["ansible-doc", "--json", "-t", "lookup", f"pinned.release.{name}"])
    assert text.returncode == 0, text.stderr
    data = json.loads(text.stdout)[f"pinned.release.{name}"]
    strings_only(data)
    assert data["examples"].strip(), name


@pytest.mark.parametrize(
    "source",
    ["inventories/example", "inventories/example/hosts.yml", "inventories/lab", "inventories/lab/hosts.ini"],
)
def test_shipped_inventories_anchor_the_pin_next_to_themselves_for_the_controller(source):
    # promote.yml runs on the implicit localhost, which has no inventory_dir: a folder or a file given to -i
    # must both put the pin file inside that inventory.
    result = run(["ansible", "localhost", "-i", source, "-m", "ansible.builtin.debug", "-a", "var=release_pin_file"])
    assert result.returncode == 0, result.stdout + result.stderr
    folder = source.removesuffix("/hosts.yml").removesuffix("/hosts.ini")
    assert f"{ROOT}/{folder}/group_vars/production/release_pin.yml" in result.stdout


def test_inventory_reference_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/inventory_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"docs/inventory-reference.md is stale: run make docs\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize("inventory", ["example", "lab"])
def test_controller_state_inside_an_inventory_folder_is_not_read_as_inventory(inventory, tmp_path):
    # -i <folder> parses every file below it; evidence and drift reports are JSON that looks like groups.
    shutil.copytree(ROOT / "inventories" / inventory, tmp_path / inventory)
    state = run(["ansible", "localhost", "-i", str(tmp_path / inventory), "-m", "debug", "-a", "var=release_state_dir"])
    state_dir = Path(re.search(r"release_state_dir: (\S+)", state.stdout).group(1))
    (state_dir / "evidence").mkdir(parents=True, exist_ok=True)
    (state_dir / "evidence/candidate.json").write_text(json.dumps({"passed": True, "hosts": {"test1": {}}}))
    graph = run(["ansible-inventory", "-i", str(tmp_path / inventory), "--graph"])
    assert graph.returncode == 0, graph.stderr
    assert "Skipping" not in graph.stderr, graph.stderr
    assert "passed" not in graph.stdout, graph.stdout


@pytest.mark.parametrize(
    ("markup", "markdown"),
    [
        ("see P(pinned.release.failure_budget#filter)", "see the `pinned.release.failure_budget` filter"),
        ("M(pinned.release.tenant_rollout) runs", "the `pinned.release.tenant_rollout` module runs"),
        ("O(tenant_batch), C(a|b), RV(due), E(HOME)", "`tenant_batch`, `a\\|b`, `due`, `HOME`"),
        (["two", "lines\nhere"], "two lines here"),
    ],
)
def test_the_inventory_reference_renders_ansible_doc_markup(markup, markdown):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import inventory_reference
    finally:
        sys.path.remove(str(ROOT / "tools"))
    assert inventory_reference.cell(markup) == markdown
