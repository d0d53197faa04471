# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that turn results into what people read: rollout_lines; and host_facts, which gathers one fact of each play
host. (The fleet drift report is the drift_report action's.)"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable
from jinja2 import Undefined

from ansible_collections.pinned.release.plugins.plugin_utils._filter_args import HOST_NAMES, expect
from ansible_collections.pinned.release.plugins.plugin_utils._reports import rollout_lines


def _lines(result):
    if not isinstance(result, dict):
        raise AnsibleFilterError(
            f"rollout_lines: expects a tenant_rollout result (a mapping), got {type(result).__name__}"
        )
    return rollout_lines(result)


def host_facts(hostvars, hosts, name):
    """``{host: value}`` of a fact (a dotted path) on each host; None where a host has no such fact.

    A host that never set the fact (unreachable, or not reached by the rollout) is not an error, as it is with
    ``map('extract', hostvars) | map(attribute=..., default=none)``: to Jinja a None default is no default.
    """
    expect("host_facts", "the hosts", hosts, HOST_NAMES)
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
            "host_facts": host_facts,
        }
