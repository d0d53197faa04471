# SPDX-License-Identifier: GPL-3.0-or-later
"""The molecule verifiers (testinfra) share molecule/shared/labinfo.py and the lab facts in tests/support."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "shared"), str(HERE.parent)]
