# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the production rollout's shape: rollout_waves, failure_budget, wave_batches (documented in their .yml
files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.pinned.release.plugins.plugin_utils._filter_args import HOST_NAMES, expect
from ansible_collections.pinned.release.plugins.plugin_utils._waves import (
    RolloutShapeError,
    failure_budget,
    rollout_waves,
    wave_batches,
)


def _checked(function, *args):
    try:
        return function(*args)
    except RolloutShapeError as error:
        raise AnsibleFilterError(str(error)) from None


def _waves(value):
    return _checked(rollout_waves, value)


def _budget(value):
    return _checked(failure_budget, value)


def _batches(waves, hosts, dropped=None):
    expect("wave_batches", "the hosts (ansible_play_hosts_all)", hosts, HOST_NAMES)
    expect("wave_batches", "the dropped hosts", dropped, HOST_NAMES, optional=True)
    return _checked(wave_batches, waves, hosts, dropped)


class FilterModule:
    def filters(self):
        return {
            "rollout_waves": _waves,
            "failure_budget": _budget,
            "wave_batches": _batches,
        }
