# SPDX-License-Identifier: GPL-3.0-or-later
"""Every filter refuses bad input with an error naming the filter and what is wrong, never a Python error: each row
calls the filter as Jinja would. One row goes through a real ansible run on the lab (tests/integration/test_bad_input.py)."""

from __future__ import annotations

import importlib

import pytest
from ansible.errors import AnsibleFilterError

FILTERS = {
    name: function
    for module in ("evidence", "reports", "rollback", "rollout", "tenants")
    for name, function in importlib.import_module(f"ansible_collections.pinned.release.plugins.filter.{module}")
    .FilterModule()
    .filters()
    .items()
}

ROWS = [
    ("tenant_problems", [], ({}, None, 5), "settings must be a mapping"),
    ("rollout_lines", "x", (), "rollout_lines"),
    ("evidence_path", 5, ("/tmp",), "evidence_path"),
    ("evidence_path", "abc", ("/tmp",), "evidence_path"),
    ("evidence_record", 5, ({}, "c", "op", "now"), "evidence_record"),
    ("evidence_gate", 5, ("/tmp",), "evidence_gate"),
    ("evidence_candidate", ["/tmp/c.json"], (), "evidence_candidate: the candidate file must be a string"),
    ("evidence_candidate", "/tmp/c.json", ("yes",), "evidence_candidate: require_signature must be a boolean"),
    ("rollback_target", 5, ([],), "rollback_target"),
    ("rollback_target", None, ("x",), "history"),
    ("rollback_outcome", 5, (None,), "rollback_outcome"),
    ("rollback_incident", {"prod1": 5}, ({}, "r", "t", "op"), "prod1"),
    ("rollback_incident", 5, ({}, "r", "t", "op"), "rollback_incident"),
    ("host_facts", {}, ("prod1", "tenant_result"), "host_facts"),
    ("rollout_waves", [1, "25x"], (), "release_waves: wave 2 ('25x')"),
    ("failure_budget", "lots", (), "release_max_fail_percentage: 'lots'"),
    ("wave_batches", [1, 5], ("prod1",), "wave_batches: the hosts (ansible_play_hosts_all) must be a list"),
    ("wave_batches", [1, 5], (["prod1"], "prod1"), "wave_batches: the dropped hosts must be a list"),
    ("wave_batches", [1, 5], (["prod1"], [{"x": 1}]), "wave_batches: the dropped hosts must be a list of host names"),
    (
        "wave_batches",
        [1, 5],
        ([["prod1"]],),
        "wave_batches: the hosts (ansible_play_hosts_all) must be a list of host names",
    ),
    ("host_facts", {}, ([{"x": 1}], "tenant_result"), "host_facts: the hosts must be a list of host names"),
]
PYTHON_ERRORS = ("object has no attribute", "unhashable", "missing 1 required", "is not subscriptable")


@pytest.mark.parametrize(("name", "value", "args", "fragment"), ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_filters_refuse_bad_input_in_one_line(name, value, args, fragment):
    with pytest.raises(AnsibleFilterError) as refused:
        FILTERS[name](value, *args)
    message = str(refused.value)
    assert fragment in message, message
    assert "\n" not in message.strip(), message
    assert not any(error in message for error in PYTHON_ERRORS), message


def test_every_filter_has_a_bad_input_row():
    assert {row[0] for row in ROWS} == set(FILTERS)
