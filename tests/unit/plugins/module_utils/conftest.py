# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from .fake_host import Host


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch):
    """fsync guards against a power loss, which no unit test simulates (a crash here is a process dying): skipped, the
    crash matrix runs several times faster."""
    monkeypatch.setattr("os.fsync", lambda fd: None)
