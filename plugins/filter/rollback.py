# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the rollback role: rollback_target, rollback_outcome, rollback_incident (documented in their .yml files)."""

from __future__ import annotations

from ansible_collections.pinned.release.plugins.plugin_utils._filter_args import expect
from ansible_collections.pinned.release.plugins.plugin_utils._reports import NO_RESULT
from ansible_collections.pinned.release.plugins.plugin_utils._rollback import host_outcome, incident, rollback_target


def _target(pin, history, asked=None, away_from=None):
    expect("rollback_target", "the pin (release_pin)", pin, "a mapping", optional=True)
    expect("rollback_target", "the pin history (release_pin_history)", history, "a list", optional=True)
    expect("rollback_target", "away_from (a digest)", away_from, "a string", optional=True)
    return rollback_target(pin, history, asked, away_from)


def _outcome(result, failure):
    expect("rollback_outcome", "the host's tenant_result", result, "a mapping", optional=True)
    return host_outcome(result, failure)


def _incident(outcomes, target, reason, started_at, operator, repin=None):
    expect("rollback_incident", "the outcomes ({host: rollback_outcome})", outcomes, "a mapping")
    expect("rollback_incident", "the target (rollback_target)", target, "a mapping")
    outcomes = {
        host: host_outcome(None, NO_RESULT) if outcome is None else outcome for host, outcome in outcomes.items()
    }
    for host, outcome in outcomes.items():
        expect("rollback_incident", f"the outcome of {host}", outcome, "a mapping")
    return incident(target, reason, started_at, operator, outcomes, repin if isinstance(repin, dict) else None)


class FilterModule:
    def filters(self):
        return {
            "rollback_target": _target,
            "rollback_outcome": _outcome,
            "rollback_incident": _incident,
        }
