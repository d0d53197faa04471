# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that turn results into what people read: rollout_lines, drift_report, drift_markdown, drift_junit, drift_row."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.pinned.release.plugins.plugin_utils._reports import (
    drift_junit,
    drift_markdown,
    drift_report,
    drift_row,
    rollout_lines,
)


def _report(results, pin_image):
    if not isinstance(results, dict):
        raise AnsibleFilterError(
            f"drift_report: expects a mapping of host to tenant_rollout result, got {type(results).__name__}"
        )
    return drift_report(sorted(results), results, pin_image)


class FilterModule:
    def filters(self):
        return {
            "rollout_lines": rollout_lines,
            "drift_report": _report,
            "drift_markdown": drift_markdown,
            "drift_junit": drift_junit,
            "drift_row": drift_row,
        }
