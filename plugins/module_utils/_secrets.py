# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep secret values out of module results, by exact value.

Modules take secrets only in ``no_log`` options, so Ansible never writes them to the host's syslog or
journal. Ansible's own masking of results replaces a secret wherever it appears inside any string, which
garbles unrelated values that happen to contain a short secret (a digest shown as ``sha256:****...``).
The modules mask their results here instead: a field whose value *is* a secret is masked; free text
(messages, log lines) has secret occurrences replaced or the line dropped. Then they take the secret
values out of Ansible's list, and hand back an ``invocation`` with every ``no_log`` option marked.
"""

from __future__ import annotations

SECRET_MASK = "********"  # noqa: S105 - the mask shown instead of a secret
NO_LOG_MARK = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
# Result keys that hold free text, where a secret is masked inside the text.
FREE_TEXT_KEYS = {
    "msg",
    "detail",
    "standing",
    "failure",
    "error",
    "errors",
    "message",
    "warnings",
    "recovery",
    "breaches",
    "summary",
}


class SecretMask:
    """Masks a set of secret values in results."""

    def __init__(self, values=()) -> None:
        self.values = sorted({str(v) for v in values if v is not None and str(v) != ""}, key=len, reverse=True)

    def add(self, values) -> None:
        self.values = sorted(set(self.values) | {str(v) for v in values if v is not None and str(v) != ""},
                             key=len, reverse=True)  # fmt: skip

    def text(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, SECRET_MASK)
        return text

    def lines(self, text: str, limit: int = 20) -> list:
        """The last ``limit`` lines of ``text`` that contain no secret value."""
        lines = [line for line in text.splitlines() if not any(value in line for value in self.values)]
        return lines[-limit:] if limit else lines

    def apply(self, data: object, free_text: bool = False) -> object:
        if isinstance(data, dict):
            return {key: self.apply(value, free_text or key in FREE_TEXT_KEYS) for key, value in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.apply(item, free_text) for item in data]
        if isinstance(data, str):
            if data in self.values:
                return SECRET_MASK
            return self.text(data) if free_text else data
        return data


def sanitized_invocation(params: dict, argument_spec: dict) -> dict:
    """``params`` with the value of every ``no_log`` option (suboptions too) replaced by Ansible's mark."""

    def walk(values: object, spec: dict) -> object:
        if not isinstance(values, dict):
            return values
        clean = {}
        for key, value in values.items():
            option = spec.get(key) or {}
            if option.get("no_log") and value is not None:
                clean[key] = NO_LOG_MARK
            elif option.get("options") and isinstance(value, list):
                clean[key] = [walk(item, option["options"]) for item in value]
            elif option.get("options") and isinstance(value, dict):
                clean[key] = walk(value, option["options"])
            else:
                clean[key] = value
        return clean

    return walk(params, argument_spec)  # type: ignore[return-value]


def finish(module, result: dict, mask: SecretMask) -> dict:
    """Mask ``result`` by exact value, give it a safe invocation, and stop Ansible's substring masking."""
    result = mask.apply(result)  # type: ignore[assignment]
    result["invocation"] = {"module_args": sanitized_invocation(module.params, module.argument_spec)}
    module.no_log_values.difference_update(mask.values)
    return result
