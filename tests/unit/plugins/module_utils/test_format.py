# SPDX-License-Identifier: GPL-3.0-or-later
"""A digest and a Markdown table cell are written one way everywhere people read them."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.module_utils._format import markdown_cell, short_digest

DIGEST = "sha256:" + "0123456789ab" * 5 + "cdef"


@pytest.mark.parametrize(
    ("value", "short"),
    [
        (DIGEST, "sha256:0123456789ab"),
        (f"registry.example/acme/open-webui:0.12.4@{DIGEST}", "sha256:0123456789ab"),
        (None, "-"),
        ("", "-"),
    ],
)
def test_a_short_digest_is_the_algorithm_and_12_hex_digits_of_a_digest_or_a_reference(value, short):
    assert short_digest(value) == short


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("v1 | first", "v1 \\| first"),
        ("two\r\nlines\tand  spaces", "two lines and spaces"),
        (None, "-"),
        ("", "-"),
        (0, "0"),
    ],
)
def test_a_markdown_cell_cannot_break_its_table(value, cell):
    assert markdown_cell(value) == cell
