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


@pytest.fixture(scope="session")
def lab():
    """The lab must be up (make lab); an integration test never skips for its absence."""
    status = subprocess.run([str(ROOT / "lab/lab.sh"), "status"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        pytest.fail(f"the lab is not up (run `make lab`):\n{status.stdout}{status.stderr}", pytrace=False)
    return status.stdout
