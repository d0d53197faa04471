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


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.parent.name == "integration":
            module = item.path.stem
            item.add_marker(pytest.mark.xdist_group("real-app" if module in REAL_APP_MODULES else module))


@pytest.fixture(scope="session")
def lab():
    """The lab must be up (make lab); an integration test never skips for its absence."""
    status = subprocess.run([str(ROOT / "lab/lab.sh"), "status"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        pytest.fail(f"the lab is not up (run `make lab`):\n{status.stdout}{status.stderr}", pytrace=False)
    return status.stdout
