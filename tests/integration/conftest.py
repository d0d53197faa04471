# SPDX-License-Identifier: GPL-3.0-or-later
"""One private workspace per workflow module, on freshly reset lab tenants."""

from __future__ import annotations

import pytest

from tests.support.lab import lab_script
from tests.support.workflow import assert_no_secret_in, make_workspace, reset_nodes


@pytest.fixture(scope="module")
def ws(request, tmp_path_factory, lab):
    """A copy of the lab inventory on reset nodes, prepared by the module's ``prepare_workspace(ws)`` if it has one.

    Afterwards: no secret value in any playbook output, the registry up, and :release back on v1.
    """
    reset_nodes()
    workspace = make_workspace(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))
    prepare = getattr(request.module, "prepare_workspace", None)
    if prepare is not None:
        prepare(workspace)
    yield workspace
    lab_script("registry-start")
    for run in workspace.runs:
        assert_no_secret_in(run.output)
    workspace.release("v1")
