# SPDX-License-Identifier: GPL-3.0-or-later
"""One private workspace per workflow module, on freshly reset lab tenants."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.support.lab import CELL, lab_script
from tests.support.receivers import WebhookReceiver
from tests.support.workflow import assert_no_secret_in, make_workspace, reset_nodes


@pytest.fixture(scope="session", autouse=True)
def _lab_commands_on_this_cell():
    """Every lab/lab.sh a test starts, however it starts it, works on this process's cell only.

    `up` started from one cell used to restart another cell's nodes, undoing a node a test there had stopped on
    purpose. Set here, in the process that runs the tests: pytest-xdist's controller must not pass a cell on.
    """
    os.environ["PINNED_LAB_CELL"] = str(CELL)


@pytest.fixture(scope="module")
def ws(request, tmp_path_factory, lab):
    """A copy of the lab inventory on reset nodes, prepared by the module's ``prepare_workspace(ws)`` if it has one.

    A module with ``TELL_A_WEBHOOK = True`` has its release steps notify a real webhook server (``ws.hook``), so its
    tests assert what people are told about the very runs they make. Afterwards: no secret value in any playbook
    output, the registry up, and :release back on v1.
    """
    reset_nodes()
    workspace = make_workspace(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))
    if getattr(request.module, "TELL_A_WEBHOOK", False):
        workspace.hook = WebhookReceiver()
        target = {"name": "ops-webhook", "type": "webhook", "url": workspace.hook.url("/hook")}
        (workspace.directory / "group_vars/all/notify.yml").write_text(
            yaml.safe_dump({"release_notify_targets": [target], "release_notify_timeout": 2})
        )
    prepare = getattr(request.module, "prepare_workspace", None)
    if prepare is not None:
        prepare(workspace)
    yield workspace
    if workspace.hook is not None:
        assert_no_secret_in(json.dumps([post["body"] for post in workspace.hook.posts]))
        workspace.hook.close()
    lab_script("registry-start")
    for run in workspace.runs:
        assert_no_secret_in(run.output)
    workspace.release("v1")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing lab test's one-line summary starts with its lab cell (its own messages name the host, tenant, step)."""
    outcome = yield
    report = outcome.get_result()
    crash = getattr(report.longrepr, "reprcrash", None)
    if report.failed and crash is not None and not crash.message.startswith("[cell"):
        crash.message = f"[cell {CELL}] {crash.message}"
