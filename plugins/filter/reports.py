# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that turn results into what people read: rollout_lines, drift_report, drift_markdown, drift_junit, drift_row;
and host_facts, which gathers one fact of each play host."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable
from jinja2 import Undefined

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


def host_facts(hostvars, hosts, name):
    """``{host: value}`` of a fact (a dotted path) on each host; None where a host has no such fact.

    A host that never set the fact (unreachable, or not reached by the rollout) is not an error, as it is with
    ``map('extract', hostvars) | map(attribute=..., default=none)``: to Jinja a None default is no default.
    """
    expect("host_facts", "the hosts", hosts, "a list")
    expect("host_facts", "the fact name", name, "a string")
    facts = {}
    for host in hosts:
        value = None
        try:
            value = hostvars[host]
            for part in name.split("."):
                value = value[part] if value is not None else None
        except (KeyError, TypeError, AnsibleUndefinedVariable):
            value = None
        facts[host] = None if isinstance(value, Undefined) else value
    return facts


class FilterModule:
    def filters(self):
        return {
            "rollout_lines": _lines,
            "drift_report": _report,
            "drift_markdown": _markdown,
            "drift_junit": _junit,
            "drift_row": _row,
            "host_facts": host_facts,
        }
