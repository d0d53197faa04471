# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Type checks shared by the collection's filters: a wrong input is one line naming the filter and the input."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

_KINDS = {"a mapping": dict, "a list": list, "a string": str, "a boolean": bool}


HOST_NAMES = "a list of host names"


def expect(filter_name: str, what: str, value: object, kind: str, optional: bool = False) -> None:
    """Raise AnsibleFilterError unless ``value`` is ``kind`` (a mapping, a list, a string, a list of host names), or
    None if optional."""
    if value is None and optional:
        return
    if kind == HOST_NAMES:
        expect(filter_name, what, value, "a list")
        odd = next((host for host in value if not isinstance(host, str)), None)  # type: ignore[union-attr]
        if odd is not None:
            raise AnsibleFilterError(f"{filter_name}: {what} must be {kind}, got a {type(odd).__name__} in the list")
        return
    if not isinstance(value, _KINDS[kind]):
        raise AnsibleFilterError(f"{filter_name}: {what} must be {kind}, got {type(value).__name__}")
