# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.lab import ROOT

# The collection resolves from the checkout, as it does for ansible (ansible.cfg).
sys.path.insert(0, str(ROOT / ".collections"))


@pytest.fixture(scope="session")
def lab():
    """The lab must be up (make lab); an integration test never skips for its absence."""
    status = subprocess.run([str(ROOT / "lab/lab.sh"), "status"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        pytest.fail(f"the lab is not up (run `make lab`):\n{status.stdout}{status.stderr}", pytrace=False)
    return status.stdout
