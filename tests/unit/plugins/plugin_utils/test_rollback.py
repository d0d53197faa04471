# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback target and the incident record."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.plugin_utils._rollback import host_outcome, incident, rollback_target

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
REPO = "registry.example/app"


@pytest.mark.parametrize(
    ("pin", "history", "asked", "expected"),
    [
        ({"image": f"{REPO}@{D2}", "digest": D2}, [{"image": f"{REPO}@{D1}", "digest": D1}], "", D1),
        (
            {"image": f"{REPO}@{D1}", "digest": D1, "kind": "rollback"},
            [{"image": f"{REPO}@{D2}", "digest": D2}],
            "",
            D1,
        ),
        # a reason that merely starts with "rollback:" is not a rollback pin
        (
            {"image": f"{REPO}@{D2}", "digest": D2, "reason": "rollback: x"},
            [{"image": f"{REPO}@{D1}", "digest": D1}],
            "",
            D1,
        ),
        ({"image": f"{REPO}@{D2}", "digest": D2}, [], f"{REPO}@{D3}", D3),
    ],
)
def test_rollback_target(pin, history, asked, expected):
    assert rollback_target(pin, history, asked)["digest"] == expected


@pytest.mark.parametrize(
    ("pin", "history", "asked", "error"),
    [
        ({}, [], "", "the pin has no history"),
        (None, None, "", "the pin has no history"),
        ({}, [], f"{REPO}:v1", "is not pinned"),
    ],
)
def test_no_rollback_target(pin, history, asked, error):
    assert error in rollback_target(pin, history, asked)["error"]


@pytest.mark.parametrize(
    ("pin", "history", "expected"),
    [
        # a release that breached after its rollout goes back to the newest other pin, whatever the pin's kind
        ({"image": f"{REPO}@{D2}", "digest": D2}, [{"image": f"{REPO}@{D1}", "digest": D1}], D1),
        (
            {"image": f"{REPO}@{D2}", "digest": D2, "kind": "rollback"},
            [{"image": f"{REPO}@{D2}", "digest": D2}, {"image": f"{REPO}@{D1}", "digest": D1}],
            D1,
        ),
        # hand-edited entries: an image and digest that disagree, no digest, a tag - passed over
        (
            {"image": f"{REPO}@{D3}", "digest": D3},
            [{"image": f"{REPO}@{D3}", "digest": D1}, {"image": f"{REPO}:1.2"}, {"image": f"{REPO}@{D2}"}],
            D2,
        ),
        ({"image": f"{REPO}@{D2}", "digest": D2}, [{"image": f"{REPO}@{D2}", "digest": D2}], None),
        ({"image": f"{REPO}@{D2}", "digest": D2}, [{"digest": D1}, "garbage"], None),
        ({"image": f"{REPO}@{D2}", "digest": D2}, [], None),
    ],
)
def test_a_rollback_away_from_a_digest_never_lands_on_it(pin, history, expected):
    away_from = pin["digest"]
    target = rollback_target(pin, history, "", away_from)
    if expected is None:
        assert target["error"].startswith(f"the pin history has no pinned digest other than {away_from[:19]}")
    else:
        assert target == {
            "image": f"{REPO}@{expected}",
            "digest": expected,
            "why": f"the newest pin before {away_from[:19]}",
        }


def outcomes():
    ok = host_outcome({"tenants": [{"name": "acme", "outcome": "replaced", "previous_digest": D2, "restored_from": "/s.tar.gz",
                                    "set_aside": "/a", "lost_writes": ["kv/x", "kv/y"]}]}, None)  # fmt: skip
    down = host_outcome(None, "prod2: acme failed on ...")
    return {"prod1": ok, "prod2": down}


def test_the_incident_row_cannot_break_the_table():
    target = {"image": f"{REPO}@{D1}", "digest": D1}
    found = incident(target, "chat | export\nbroken", "2026-11-25T10:00:00Z", "alice", outcomes(), {"changed": True})
    assert found["record"] is True
    row = found["row"]
    assert "\n" not in row
    assert "chat \\| export broken" in row
    assert row.count(" | ") == 6
    assert "data restored for acme (2 file(s) written since the upgrade not carried over, kept aside)" in row
    assert "prod2: FAILED" in row
    assert found["failed_hosts"] == ["prod2"]


def test_the_incident_says_when_the_re_pin_failed_or_bypassed_the_registry():
    target = {"image": f"{REPO}@{D1}", "digest": D1}
    failed = incident(target, "r", "T", "me", outcomes(), {"failed": True, "msg": "registry said 401"})
    assert "RE-PIN FAILED (registry said 401)" in failed["row"]
    assert failed["record"] is True
    trusted = incident(target, "r", "T", "me", outcomes(), {"changed": True, "registry_verified": False})
    assert "re-pinned from the pin history without the registry (unreachable)" in trusted["row"]
    refused = {"changed": True, "registry_verified": False,
               "registry_error": "registry r.example rejected the credentials for app:\n check username/password"}  # fmt: skip
    row = incident(target, "r", "T", "me", outcomes(), refused)["row"]
    assert "without the registry (registry r.example rejected the credentials for app: check username/password)" in row


def test_a_rollback_that_changed_nothing_is_no_incident():
    nothing = {"prod1": host_outcome({"tenants": [{"name": "acme", "outcome": "unchanged"}]}, None)}
    found = incident({"image": "x", "digest": D1}, "r", "T", "me", nothing, {"changed": False})
    assert found["record"] is False
