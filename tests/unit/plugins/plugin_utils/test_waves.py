# SPDX-License-Identifier: GPL-3.0-or-later
"""The production rollout's shape: waves (serial) and failure budget (max_fail_percentage), as Ansible uses them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pinned.release.plugins.filter.rollout import FilterModule
from ansible_collections.pinned.release.plugins.plugin_utils._waves import (
    RolloutShapeError,
    failure_budget,
    rollout_report_due,
    rollout_waves,
    wave_batches,
    wave_stops_rollout,
)

HOSTS = [f"prod{i}" for i in range(1, 21)]


@pytest.mark.parametrize(
    ("value", "waves"),
    [
        (None, [1, 5]),
        ("", [1, 5]),
        ([1, "25%", "100%"], [1, "25%", "100%"]),
        ([" 2 ", " 50 % "], [2, "50%"]),
        (3, [3]),
        ("10%", ["10%"]),
    ],
)
def test_waves_are_taken_as_serial_takes_them(value, waves):
    assert rollout_waves(value) == waves


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (["25x"], "wave 1 ('25x')"),
        ([1, 0], "wave 2 (0)"),  # Ansible would run every host at once
        ([-1], "wave 1 (-1)"),
        (["0%"], "wave 1 ('0%')"),
        ([1, "150%"], "wave 2 ('150%')"),
        ([True], "wave 1 ('True')"),
        ([1.5], "wave 1 (1.5)"),
        ([None], "wave 1 (None)"),
        ([], "the list is empty"),
        ({"a": 1}, "wave 1 ({'a': 1})"),
        (["²"], "wave 1 ('²')"),  # str.isdigit() says yes, int() says no
        ([100000000000000], 'wave 1 (100000000000000) is more than 10000 hosts: give "100%"'),
        (["10001"], "wave 1 (10001) is more than 10000 hosts"),
    ],
)
def test_a_wave_ansible_would_misread_is_refused_in_one_line(value, named):
    with pytest.raises(RolloutShapeError) as caught:
        rollout_waves(value)
    message = str(caught.value)
    assert message.startswith("release_waves: ")
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("waves", "sizes"),
    [
        (None, [1, 5, 5, 5, 4]),
        ([1, "25%", "100%"], [1, 5, 14]),
        ([1, "10%"], [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]),
        (["1%"], [1] * 20),  # 1% of 20 rounds down to 0: never less than one host
        ([50], [20]),
        ([2, 3], [2, 3, 3, 3, 3, 3, 3]),
    ],
)
def test_batches_follow_ansibles_serial(waves, sizes):
    batches = wave_batches(waves, HOSTS)
    assert [len(batch) for batch in batches] == sizes
    assert [host for batch in batches for host in batch] == HOSTS


def test_no_host_gives_no_batch():
    assert wave_batches([1, 5], []) == []


@pytest.mark.parametrize(
    ("dropped", "batches"),
    [
        (None, [["prod1"], ["prod2", "prod3"], ["prod4", "prod5"]]),
        ([], [["prod1"], ["prod2", "prod3"], ["prod4", "prod5"]]),
        # prod2's variables were refused: its wave is prod3 alone, as Ansible's batch is; the waves keep their shape
        (["prod2"], [["prod1"], ["prod3"], ["prod4", "prod5"]]),
        (["prod1", "prod5"], [[], ["prod2", "prod3"], ["prod4"]]),  # the canary failed earlier: its wave is empty
        (["elsewhere"], [["prod1"], ["prod2", "prod3"], ["prod4", "prod5"]]),  # a host not in the play changes nothing
    ],
)
def test_hosts_ansible_dropped_leave_their_waves_as_ansibles_batch_does(dropped, batches):
    assert wave_batches([1, 2], HOSTS[:5], dropped) == batches


@pytest.mark.parametrize(
    ("value", "budget"),
    [(None, 0), ("", 0), (0, 0), (10, 10), ("25", 25), ("25%", 25), (100, 100)],
)
def test_the_failure_budget_is_a_whole_percentage(value, budget):
    assert failure_budget(value) == budget


@pytest.mark.parametrize("value", [-1, 101, "abc", 2.5, True, "10.5", [10], "²"])
def test_a_failure_budget_out_of_range_is_refused_in_one_line(value):
    with pytest.raises(RolloutShapeError, match=r"^release_max_fail_percentage: .* from 0 to 100"):
        failure_budget(value)


@pytest.mark.parametrize(
    ("failed", "size", "budget", "stops"),
    [
        (0, 5, 0, False),
        (1, 5, 0, True),  # the default: the first failed host stops it
        (1, 5, 20, False),  # 20% of 5 is one host: more than that stops it
        (2, 5, 20, True),
        (1, 1, 50, True),  # the canary is a wave of one
        (13, 14, 100, False),
        (14, 14, 100, True),  # every host of a wave failed: Ansible ends the play whatever the budget
        (1, 1, 100, True),
    ],
)
def test_a_wave_stops_the_rollout_past_its_budget_as_ansible_decides(failed, size, budget, stops):
    assert wave_stops_rollout(failed, size, budget) is stops


WAVES_OF_8 = [["prod1"], ["prod2", "prod3"], ["prod4", "prod5", "prod6", "prod7", "prod8"]]


@pytest.mark.parametrize(
    ("waves", "batch", "failures", "due"),
    [
        (WAVES_OF_8, ["prod1"], {}, False),  # the canary went well: nothing to say yet
        (WAVES_OF_8, ["prod2", "prod3"], {"prod1": ""}, False),  # an empty failure is none
        (WAVES_OF_8, ["prod4", "prod5", "prod6", "prod7", "prod8"], {}, True),  # the last wave: the end
        (WAVES_OF_8, ["prod2", "prod3"], {"prod3": "pull failed"}, True),  # a failed host: people must know now
        (WAVES_OF_8, ["prod2"], {}, True),  # prod3 was dropped (unreachable): the wave is shorter than planned
        (WAVES_OF_8, ["prod2", "prod3"], {"prod1": "old failure"}, False),  # a failure of an earlier wave was told
        ([], ["prod1", "prod2"], {}, True),  # no waves given: one batch, the end
        ([["prod1", "prod2"]], ["prod1", "prod2"], None, True),
        (WAVES_OF_8, [], {}, True),  # nothing ran (every host dropped): say so
        (WAVES_OF_8, ["elsewhere"], {}, True),  # a batch no wave holds: say rather than stay silent
    ],
)
def test_a_rollout_is_told_after_its_last_wave_and_after_a_wave_that_lost_a_host(waves, batch, failures, due):
    assert rollout_report_due(waves, batch, failures) is due


def test_the_filters_say_which_filter_and_input_failed():
    filters = FilterModule().filters()
    assert filters["rollout_waves"]([1, "25%"]) == [1, "25%"]
    assert filters["failure_budget"]("10") == 10
    assert filters["wave_batches"]([1], ["a", "b"]) == [["a"], ["b"]]
    with pytest.raises(AnsibleFilterError, match=r"^release_waves: wave 1 \('x'\)"):
        filters["rollout_waves"](["x"])
    with pytest.raises(AnsibleFilterError, match=r"^wave_batches: the hosts"):
        filters["wave_batches"]([1], "prod1")
