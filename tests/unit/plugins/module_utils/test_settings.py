# SPDX-License-Identifier: GPL-3.0-or-later
"""The transaction's settings are declared once (_settings.py): the module's argument spec comes from the table, and
every file that must spell them out (the module's documentation, the tenant role's defaults, argument specs and module
call) says what the table says."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.pinned.release.plugins.module_utils._rollout_model import Settings
from ansible_collections.pinned.release.plugins.module_utils._settings import (
    BY_KEY,
    SETTINGS,
    argument_spec,
    limit_problems,
)
from ansible_collections.pinned.release.plugins.module_utils._tenants import settings_problems

ROOT = Path(__file__).resolve().parents[4]
TOOL = ROOT / "tools/settings_table.py"


def module_documentation() -> dict:
    tree = ast.parse((ROOT / "plugins/modules/tenant_rollout.py").read_text())
    text = next(n.value.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "DOCUMENTATION")
    return yaml.safe_load(text)["options"]


def test_the_generated_parts_say_what_the_table_says():
    check = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_a_hand_edit_of_a_generated_default_is_caught(tmp_path):
    """The check is real: a default changed by hand in the role (or the table changed alone) fails it."""
    copy = tmp_path / "tree"
    for part in ("tools", "plugins", "roles/tenant"):
        shutil.copytree(ROOT / part, copy / part, symlinks=True)
    (copy / ".collections/ansible_collections/pinned").mkdir(parents=True)
    (copy / ".collections/ansible_collections/pinned/release").symlink_to(copy)
    defaults = copy / "roles/tenant/defaults/main.yml"
    defaults.write_text(defaults.read_text().replace("tenant_snapshot_keep: 5", "tenant_snapshot_keep: 3"))
    check = subprocess.run([sys.executable, str(copy / "tools/settings_table.py"), "--check"], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert check.returncode == 1
    assert "roles/tenant/defaults/main.yml" in check.stderr
    assert "make docs" in check.stderr


def test_module_documentation_defaults_and_types_match_the_argument_spec():
    documented, spec = module_documentation(), argument_spec()
    for option, fields in spec.items():
        assert documented[option]["type"] == fields["type"], option
        assert documented[option].get("default") == fields["default"], option
    for option, fields in spec["nginx"]["options"].items():
        assert documented["nginx"]["suboptions"][option].get("default") == fields["default"], option


def test_the_role_defaults_are_the_module_defaults_unless_they_read_inventory():
    defaults = yaml.safe_load((ROOT / "roles/tenant/defaults/main.yml").read_text())
    for setting in (s for s in SETTINGS if s.role):
        if setting.role_default is None:
            assert defaults[setting.role_variable] == setting.default, setting.role_variable
        else:
            assert defaults[setting.role_variable] == setting.role_default, setting.role_variable


def test_the_transaction_starts_from_the_declared_defaults():
    settings = Settings()
    assert (settings.batch_size, settings.snapshot_keep, settings.aside_keep, settings.data_mode,
            settings.failure_scope, settings.nginx_https_port, settings.log_lines) == (
        BY_KEY["batch_size"].default, BY_KEY["snapshot_keep"].default, BY_KEY["aside_keep"].default,
        BY_KEY["data_mode"].default, BY_KEY["failure_scope"].default, BY_KEY["nginx.https_port"].default,
        BY_KEY["log_lines"].default)  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "as_role", "problem"),
    [
        ({"batch_size": 0}, True, "tenant_batch must be a number of at least 1, got 0"),
        ({"batch_size": 0}, False, "batch_size must be a number of at least 1, got 0"),
        ({"nginx.https_port": "none"}, True, "tenant_nginx_https_port must be a number of at least 1"),
        ({"lock_wait": -1}, False, "lock_wait must be a number of at least 0"),
        ({"data_mode": "x"}, False, "data_mode must be current, auto or restore, got 'x'"),
        ({"break_lock": "a b"}, False, "break_lock takes the run id"),
        ({"smoke_checks": "health"}, False, "smoke_checks must be a list"),
    ],
)
def test_a_problem_names_the_setting_as_the_caller_knows_it(settings, as_role, problem):
    found = settings_problems(settings, as_role=as_role)
    assert any(problem in p for p in found), found


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"lock_max_age": 0, "break_lock": "stale"}, None),  # take over any dead run's lock at once
        ({"lock_max_age": 21600.0}, None),  # YAML's float, as Ansible's int takes it
        ({"aside_keep": "0"}, None),
        ({"health_timeout": "300"}, None),  # rendered from the app profile's start_timeout
        ({"batch_size": 2.5}, "tenant_batch must be a number of at least 1, got 2.5"),
        ({"lock_max_age": True}, "tenant_lock_max_age must be a number of at least 0, got True"),
        ({"lock_max_age": "1e400"}, "tenant_lock_max_age must be a number of at least 0, got '1e400'"),
    ],
)
def test_numbers_are_taken_as_ansible_takes_them(settings, problem):
    found = settings_problems(settings, as_role=True)
    assert found == ([] if problem is None else [problem]), found


def test_a_setting_nobody_declared_is_not_judged_here():
    assert limit_problems({"something_else": -5}, True) == []
