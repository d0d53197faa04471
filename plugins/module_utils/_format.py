# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a digest, a table cell and a memory size are written: one form in every message, report, page and pin file."""

from __future__ import annotations

import re
from typing import Optional

# ``sha256:`` and 12 hex digits: enough to tell releases apart, short enough for a title or a table.
SHORT_DIGEST_LENGTH = 19


def short_digest(value: object) -> str:
    """``sha256:0123456789ab`` of a digest or of a ``repository@digest`` reference; ``-`` for none."""
    text = str(value or "")
    return text.rsplit("@", 1)[-1][:SHORT_DIGEST_LENGTH] if text else "-"


def markdown_cell(value: object) -> str:
    """A Markdown table cell: ``-`` for nothing; no line break or pipe can break the table."""
    return " ".join(str(value if value not in (None, "") else "-").split()).replace("|", "\\|")


# A memory size as Docker reads it: a number of bytes, or with b, k, m or g (1024-based).
MEMORY_RE = re.compile(r"^[0-9]+[bkmgBKMG]?$")
MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(memory: Optional[str]) -> int:
    """``700m`` -> bytes, as Docker reads a memory limit (1024-based); None or empty: 0, no limit."""
    if not memory:
        return 0
    text = str(memory).lower()
    unit = text[-1] if text[-1] in MEMORY_UNITS else ""
    return int(text[: len(text) - len(unit)]) * MEMORY_UNITS[unit]
