# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that turn results into what people read: rollout_lines, drift_report, drift_markdown, drift_junit, drift_row."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.pinned.release.plugins.plugin_utils._filter_args import expect
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


def _lines(result):
    if not isinstance(result, dict):
        raise AnsibleFilterError(
            f"rollout_lines: expects a tenant_rollout result (a mapping), got {type(result).__name__}"
        )
    return rollout_lines(result)


def _report_shape(name: str, report) -> None:
    expect(name, "the report (drift_report's result)", report, "a mapping")
    for key, kind in (("hosts", "a mapping"), ("containers", "a mapping"), ("rows", "a list")):
        expect(name, f"the report's {key}", report.get(key), kind)


def _markdown(report, generated_at):
    _report_shape("drift_markdown", report)
    return drift_markdown(report, generated_at)


def _junit(report):
    _report_shape("drift_junit", report)
    return drift_junit(report)


def _row(row):
    expect("drift_row", "the row (one of drift_report's rows)", row, "a mapping")
    missing = [key for key in ("host", "container", "field", "expected", "actual") if key not in row]
    if missing:
        raise AnsibleFilterError(f"drift_row: the row lacks {', '.join(missing)}")
    return drift_row(row)


class FilterModule:
    def filters(self):
        return {
            "rollout_lines": _lines,
            "drift_report": _report,
            "drift_markdown": _markdown,
            "drift_junit": _junit,
            "drift_row": _row,
        }
