# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Type checks shared by the collection's filters: a wrong input is one line naming the filter and the input."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

_KINDS = {"a mapping": dict, "a list": list, "a string": str, "a boolean": bool}


def expect(filter_name: str, what: str, value: object, kind: str, optional: bool = False) -> None:
    """Raise AnsibleFilterError unless ``value`` is ``kind`` (a mapping, a list, a string), or None if optional."""
    if value is None and optional:
        return
    if not isinstance(value, _KINDS[kind]):
        raise AnsibleFilterError(f"{filter_name}: {what} must be {kind}, got {type(value).__name__}")
