# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AnsibleModule whose argument errors always name the option at fault.

Ansible reports a string where a mapping with suboptions belongs as "dictionary requested, could not parse
JSON or key=value", without saying which option; these modules say "tenants[0] must be a mapping".
"""

from __future__ import annotations

import copy
from typing import Callable, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pinned.release.plugins.module_utils._docker import DockerException
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask, finish


def misplaced_mapping(spec: dict, params: object, where: str = "") -> Optional[str]:
    """The first option whose spec wants a mapping (or a list of them) and whose value is something else."""
    if not isinstance(params, dict):
        return None
    for name, option in spec.items():
        value = params.get(name)
        label = f"{where}{name}"
        if value is None:
            continue
        if option.get("type") == "dict" and not isinstance(value, dict):
            return f"{label} must be a mapping, got {type(value).__name__} {_short(value)}"
        if option.get("type") == "list" and option.get("elements") == "dict" and isinstance(value, list):
            for index, element in enumerate(value):
                if not isinstance(element, dict):
                    return f"{label}[{index}] must be a mapping, got {type(element).__name__} {_short(element)}"
                nested = misplaced_mapping(option.get("options") or {}, element, f"{label}[{index}].")
                if nested:
                    return nested
        elif option.get("options") and isinstance(value, dict):
            nested = misplaced_mapping(option["options"], value, f"{label}.")
            if nested:
                return nested
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class PinnedModule(AnsibleModule):
    def _load_params(self):
        super()._load_params()
        # Validation drops what it cannot convert; the message needs what was given.
        self._given_params = copy.deepcopy(self.params)

    def fail_json(self, msg: str, **kwargs):
        if "dictionary requested" in str(msg) and "option" not in str(msg):
            msg = misplaced_mapping(self.argument_spec, getattr(self, "_given_params", self.params)) or msg
        super().fail_json(msg=msg, **kwargs)

    def result_of(self, call: Callable[[], dict], mask: SecretMask, expected: tuple) -> dict:
        """``call()``'s result, or the module fails in one line, masked: an ``expected`` error with its own message,
        a Docker SDK error naming the engine it talked to."""
        try:
            return call()
        except expected as exc:
            self.fail_json(**finish(self, {"msg": str(exc)}, mask))
        except DockerException as exc:
            self.fail_json(**finish(self, {"msg": f"Docker engine error at {self.params['docker_host']}: {exc}"}, mask))
        raise AssertionError("fail_json returns only in tests that replace it")  # pragma: no cover

    def exit_masked(self, result: dict, mask: SecretMask) -> None:
        """End the module with ``result`` masked: failed when it says so (with its msg), else without a msg."""
        result = finish(self, result, mask)
        if result.pop("failed", False):
            self.fail_json(**result)
        result.pop("msg", None)
        self.exit_json(**result)
