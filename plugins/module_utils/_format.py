# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a digest and a table cell are written for people: one form in every message, report, page and pin file."""

from __future__ import annotations

# ``sha256:`` and 12 hex digits: enough to tell releases apart, short enough for a title or a table.
SHORT_DIGEST_LENGTH = 19


def short_digest(value: object) -> str:
    """``sha256:0123456789ab`` of a digest or of a ``repository@digest`` reference; ``-`` for none."""
    text = str(value or "")
    return text.rsplit("@", 1)[-1][:SHORT_DIGEST_LENGTH] if text else "-"


def markdown_cell(value: object) -> str:
    """A Markdown table cell: ``-`` for nothing; no line break or pipe can break the table."""
    return " ".join(str(value if value not in (None, "") else "-").split()).replace("|", "\\|")
