# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The production rollout's shape: its waves (``release_waves``, the play's ``serial``) and its failure budget
(``release_max_fail_percentage``, the play's ``max_fail_percentage``), checked before Ansible uses them.

Ansible itself takes ``serial: ["25x"]`` as "Unexpected Exception, this is probably a bug", and ``serial: [0]`` as
every host at once, without a canary; so both are refused here, in one line.
"""

from __future__ import annotations

import re
from typing import Optional

DEFAULT_WAVES = (1, 5)  # a canary host, then 5 hosts at a time
MAX_WAVE_HOSTS = 10000  # Ansible counts a wave out host by host: a huge number would hang it ("100%" is every host)
_COUNT = re.compile(r"^\s*([0-9]+)\s*$")  # ASCII digits only: str.isdigit() takes "²", which int() refuses
_PERCENT = re.compile(r"^\s*([0-9]+)\s*%\s*$")
_EXAMPLE = """-e '{"release_waves": [1, "25%", "100%"]}'"""


class RolloutShapeError(ValueError):
    """A wave or a failure budget Ansible would misread; the message names it and what to give instead."""


def _wave(position: int, item: object) -> int | str:
    if isinstance(item, bool):
        item = str(item)
    if isinstance(item, str) and _COUNT.match(item):
        item = int(item)
    if isinstance(item, int) and item > MAX_WAVE_HOSTS:
        raise RolloutShapeError(
            f'release_waves: wave {position} ({item}) is more than {MAX_WAVE_HOSTS} hosts: give "100%" for every host'
        )
    if isinstance(item, int) and item >= 1:
        return item
    if isinstance(item, str):
        match = _PERCENT.match(item)
        if match and 1 <= int(match.group(1)) <= 100:
            return f"{int(match.group(1))}%"
    raise RolloutShapeError(
        f"release_waves: wave {position} ({item!r}) is neither a number of hosts (1 or more) nor a percentage of "
        f"them (1% to 100%): e.g. {_EXAMPLE}"
    )


def rollout_waves(value: object) -> list:
    """``release_waves`` as Ansible's ``serial`` takes it: a list of host counts and ``"N%"`` strings, each wave
    at least one host. None gives the default (a canary host, then 5 at a time)."""
    if value is None or value == "":
        return list(DEFAULT_WAVES)
    items = value if isinstance(value, list) else [value]
    if not items:
        raise RolloutShapeError(f"release_waves: the list is empty; give at least one wave, e.g. {_EXAMPLE}")
    return [_wave(position, item) for position, item in enumerate(items, start=1)]


def failure_budget(value: object) -> int:
    """``release_max_fail_percentage`` as Ansible's ``max_fail_percentage``: a whole number from 0 to 100 (0, the
    default, stops the rollout at the first failed host)."""
    if value is None or value == "":
        return 0
    text = str(value).strip().rstrip("%").strip() if not isinstance(value, bool) else "?"
    if not _COUNT.match(text) or int(text) > 100:
        raise RolloutShapeError(
            f"release_max_fail_percentage: {value!r} is not a whole number from 0 to 100 (the share of a wave's hosts "
            "that may fail before the rollout stops; 0 stops it at the first failed host)"
        )
    return int(text)


def wave_size(wave: int | str, host_count: int) -> int:
    """How many hosts a wave takes, as Ansible counts it: a percentage rounds down, but is never less than one."""
    if isinstance(wave, str) and wave.endswith("%"):
        return max(int(int(wave[:-1]) / 100.0 * host_count), 1)
    return int(wave)


def wave_batches(waves: object, hosts: list, dropped: Optional[list] = None) -> list:
    """The hosts of each wave, in order, as Ansible's ``serial`` batches them: the last wave repeats until every
    host has had its turn. ``dropped`` are the hosts Ansible has taken out of the play (failed or unreachable): a wave
    lists only its others, as Ansible's batch does, while the waves keep the shape the whole list gave them."""
    sizes = [wave_size(wave, len(hosts)) for wave in rollout_waves(waves)]
    batches, remaining, position = [], list(hosts), 0
    while remaining:
        size = sizes[min(position, len(sizes) - 1)]
        batches.append(remaining[:size])
        remaining = remaining[size:]
        position += 1
    if not dropped:
        return batches
    return [[host for host in batch if host not in dropped] for batch in batches]


def wave_stops_rollout(failed: int, batch_size: int, budget: object) -> bool:
    """Whether a wave with ``failed`` hosts failed stops the rollout, as Ansible decides: more than the budget's share
    of the wave (with a budget of 0, one failed host), or every host of the wave, whatever the budget."""
    return batch_size > 0 and (failed >= batch_size or failed / batch_size > failure_budget(budget) / 100.0)


def rollout_report_due(waves: list, batch: list, failures: Optional[dict]) -> bool:
    """Whether the rollout is told now: after its last wave, and after a wave that lost a host (one failed, or Ansible
    dropped it: the batch is then shorter than its wave). Waves that went well in between are not told.

    ``waves`` are the host lists of wave_batches, ``batch`` the hosts of the wave that has just run, ``failures``
    each host's failure ('' or none for a host that did not fail)."""
    number = next((n for n, hosts in enumerate(waves) if batch and batch[0] in hosts), None)
    if number is None or number == len(waves) - 1:
        return True
    wave = waves[number]
    failed = {host for host, failure in (failures or {}).items() if failure}
    return len(batch) < len(wave) or any(host in failed for host in batch)
