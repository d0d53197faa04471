# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pinned.release.drift_report: the fleet drift report from each host's check, written on the controller."""

from __future__ import annotations

from datetime import datetime, timezone

from ansible.plugins.action import ActionBase

from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.plugin_utils._notify import inventory_secrets
from ansible_collections.pinned.release.plugins.plugin_utils._reports import (
    drift_report,
    drift_row,
    write_drift_reports,
)

ARGUMENT_SPEC = {
    "results": {"type": "dict", "required": True},
    "pin": {"type": "str", "required": True},
    "dest": {"type": "path", "required": True},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        mask = SecretMask(inventory_secrets(task_vars, self._templar.template))
        results = args["results"]
        report = mask.apply(drift_report(sorted(results), results, args["pin"]), True)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            files = write_drift_reports(args["dest"], report, now, check_mode=bool(self._task.check_mode))
        except OSError as error:
            result.update(failed=True, msg=f"the drift report could not be written in {args['dest']}: {error}")
            return result
        result.update(
            changed=bool(files["written"]),
            report={**report, "generated_at": files["generated_at"]},
            lines=[drift_row(row) for row in report["rows"]],
            written=files["written"],
            previously_drifted=files["previously_drifted"],
            diff=files["diff"],
        )
        return result
