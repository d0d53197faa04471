# SPDX-License-Identifier: GPL-3.0-or-later
"""host_facts: one fact of each host, None where a host never set it; rollback_incident takes such a None."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pinned.release.plugins.filter.reports import host_facts
from ansible_collections.pinned.release.plugins.filter.rollback import FilterModule as RollbackFilters

HOSTVARS = {
    "prod1": {"tenant_result": {"tenants": []}, "rollback_result": {"ok": True, "failure": None}},
    "prod2": {"rollback_result": {"ok": False, "failure": "prod2: boom"}},
    "prod3": {},
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tenant_result", {"prod1": {"tenants": []}, "prod2": None, "prod3": None}),
        ("rollback_result.failure", {"prod1": None, "prod2": "prod2: boom", "prod3": None}),
        ("rollback_result.failure.deeper", {"prod1": None, "prod2": None, "prod3": None}),
    ],
)
def test_host_facts(name, expected):
    assert host_facts(HOSTVARS, ["prod1", "prod2", "prod3"], name) == expected


def test_a_host_not_in_hostvars_has_none_and_bad_arguments_say_which():
    assert host_facts(HOSTVARS, ["ghost"], "tenant_result") == {"ghost": None}
    with pytest.raises(AnsibleFilterError, match="host_facts: the hosts must be a list, got str"):
        host_facts(HOSTVARS, "prod1", "tenant_result")


def test_rollback_incident_counts_a_host_without_a_result_as_failed():
    incident = RollbackFilters().filters()["rollback_incident"]
    target = {"image": "repo@sha256:" + "1" * 64, "digest": "sha256:" + "1" * 64}
    outcomes = {"prod1": {"ok": True, "failure": None, "changed": ["acme"], "from": [], "restored": []}, "prod2": None}
    result = incident(outcomes, target, "why", "2026-11-26T00:00:00Z", "alice")
    assert result["failed_hosts"] == ["prod2"]
    assert "prod2: FAILED (no result" in result["summary"]
