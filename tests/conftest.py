# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.lab import ROOT

# The collection resolves from the checkout, as it does for ansible (ansible.cfg).
sys.path.insert(0, str(ROOT / ".collections"))
# The lab releases the busybox stand-in in the tests unless a test asks for the real Open WebUI
# (tests/integration/test_open_webui.py); every ansible command a test runs inherits this.
os.environ.setdefault("PINNED_LAB_APP", "standin")


# The real app's tests are CPU-heavy (about 15 s of CPU per start on 2 CPUs): they run one after the other, on one
# worker; every other lab module keeps its tests on one worker too (they share the module's workspace and its nodes).
REAL_APP_MODULES = {"test_open_webui", "test_adopt"}


def lab_scope(nodeid: str) -> str:
    """The unit of work a pytest-xdist worker takes whole: a lab module (the real app's two together), or one test."""
    path = nodeid.split("::", 1)[0]
    if "/integration/" not in path:
        return nodeid
    return "real-app" if path.rsplit("/", 1)[-1].removesuffix(".py") in REAL_APP_MODULES else path


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class LabScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return lab_scope(nodeid)

    return LabScheduling(config, log)


@pytest.fixture(scope="session")
def lab():
    """The lab must be up (make lab); an integration test never skips for its absence."""
    status = subprocess.run([str(ROOT / "lab/lab.sh"), "status"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        pytest.fail(f"the lab is not up (run `make lab`):\n{status.stdout}{status.stderr}", pytrace=False)
    return status.stdout
