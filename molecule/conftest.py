# SPDX-License-Identifier: GPL-3.0-or-later
"""The molecule verifiers (testinfra) share molecule/shared/labinfo.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "shared"))
