# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's identity, whether an earlier run of it is gone, and the command shown back to the operator."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.pinned.release.plugins.plugin_utils._controller import (
    controller_identity,
    controller_run_gone,
    operator,
    safe_command,
)


def test_identity_of_this_process():
    me = controller_identity(os.getpid())
    assert me["pid"] == os.getpid()
    assert me["start_ticks"] is not None
    assert me["run_id"].endswith(f"-{os.getpid()}")
    assert controller_identity(os.getpid())["run_id"] == me["run_id"], "stable for the whole run"


def test_a_run_is_gone_when_its_process_is_gone_or_replaced():
    me = controller_identity(os.getpid())
    child = subprocess.Popen(["sleep", "30"])
    try:
        alive = controller_identity(child.pid)
        assert controller_run_gone(alive, me) is False
        assert controller_run_gone({**alive, "start_ticks": alive["start_ticks"] + 1}, me) is True, "pid reused"
    finally:
        child.kill()
        child.wait()
    assert controller_run_gone(alive, me) is True
    assert controller_run_gone({**alive, "host": "another-laptop"}, me) is False, (
        "another controller's run is not ours to judge"
    )
    assert controller_run_gone({**alive, "boot_id": "other-boot"}, me) is True


def test_the_command_shown_drops_secret_looking_extra_vars():
    shown = safe_command(["ansible-playbook", "playbooks/deploy.yml", "-l", "production", "-e", "vault_password=x",
                          "-e", "reason=two words", "-e", "tenant_break_lock=r1", "--extra-vars", "api_token=t"])  # fmt: skip
    assert shown == "ansible-playbook playbooks/deploy.yml -l production -e 'reason=two words'"


@pytest.mark.parametrize(
    "parts",
    [
        ["--extra-vars=db_password=hunter2secret"],
        ["-edb_password=hunter2secret"],
        ["-e", "reason=x db_password=hunter2secret"],
        ["-e", '{"reason": "x", "db_password": "hunter2secret"}'],
        ["-e", "DATABASE_URL=postgres://app:hunter2secret@db/app"],
        ["--extra-vars", "reason=x", "-e", "x_api_key=hunter2secret"],
        ["-e", "tenant_break_lock=hunter2secret"],
        ["-e", "@secrets.yml", "-e", "token=hunter2secret"],
        # spellings argparse accepts as well: an unambiguous prefix, with =, a cluster of short flags ending in e
        ["--extra", "api_token=hunter2secret"],
        ["--extra-var", "api_token=hunter2secret"],
        ["--extra=api_token=hunter2secret"],
        ["-ve", "api_token=hunter2secret"],
        ["-vvvveapi_token=hunter2secret"],
    ],
)
def test_no_spelling_of_extra_vars_lets_a_secret_through(parts):
    shown = safe_command(["ansible-playbook", "playbooks/deploy.yml", *parts])
    assert "hunter2secret" not in shown, shown
    assert shown.startswith("ansible-playbook playbooks/deploy.yml")


def test_what_is_not_a_secret_is_still_shown():
    shown = safe_command(["ansible-playbook", "deploy.yml", "-e", "reason=hotfix", "-e@vars.yml", "-l", "prod1"])
    assert shown == "ansible-playbook deploy.yml -e reason=hotfix -e@vars.yml -l prod1"


def test_operator(monkeypatch):
    monkeypatch.setenv("PINNED_OPERATOR", "alice")
    assert operator() == "alice"
    monkeypatch.delenv("PINNED_OPERATOR")
    monkeypatch.setenv("USER", "bob")
    assert operator() == "bob"
