# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the rollback role: rollback_target, rollback_outcome, rollback_incident (documented in their .yml files)."""

from __future__ import annotations

from ansible_collections.pinned.release.plugins.plugin_utils._rollback import host_outcome, incident, rollback_target


def _incident(outcomes, target, reason, started_at, operator, repin=None):
    return incident(target, reason, started_at, operator, outcomes, repin if isinstance(repin, dict) else None)


class FilterModule:
    def filters(self):
        return {
            "rollback_target": rollback_target,
            "rollback_outcome": host_outcome,
            "rollback_incident": _incident,
        }
