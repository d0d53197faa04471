# SPDX-License-Identifier: GPL-3.0-or-later
"""What operators read: lines per tenant, and the fleet drift report in JSON, Markdown and JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.pinned.release.plugins.plugin_utils._reports import (
    drift_junit,
    drift_markdown,
    drift_report,
    drift_row,
    rollout_lines,
)

D1, D2 = ("sha256:" + c * 64 for c in "12")


def test_rollout_lines_say_what_happened_to_each_tenant():
    result = {
        "recovered": [{"tenant": "acme", "run_id": "r0", "outcome": "put back (interrupted at start): healthy"}],
        "tenants": [
            {"name": "acme", "outcome": "replaced", "image": f"repo@{D2}", "previous_digest": D1,
             "timings": {"total_s": 3.1, "unavailable_s": 1.2}},
            {"name": "globex", "outcome": "unchanged", "image": f"repo@{D2}"},
            {"name": "initech", "outcome": "put_back", "image": f"repo@{D2}", "failure": "healthcheck reports unhealthy",
             "standing": "previous image repo@x healthy", "putback_errors": ["restore_site: nginx -t rejected"],
             "writes_set_aside": {"aside": "/d.failed-1", "since": "2026-11-25T10:00:00Z", "since_epoch": 1.0, "count": 7,
                                  "files": ["kv/a", "kv/b", "webui.db", "webui.db-wal", "uploads/x", "uploads/y"]}},
            {"name": "wonka", "outcome": "failed", "image": f"repo@{D2}", "failure": "looking at its container failed: 500"},
            {"name": "umbrella", "outcome": "not_attempted", "image": f"repo@{D2}"},
            {"name": "hooli", "outcome": "replaced", "image": f"repo@{D1}", "previous_digest": D2, "timings": {"total_s": 2},
             "restored_from": "/s/0.tar.gz", "restored_taken_at": "2026-11-25T10:00:00Z", "set_aside": "/d.replaced-1",
             "lost_writes": ["kv/x"]},
        ],
        "removed_undeclared": ["openwebui-ghost"],
        "warnings": ["something to look at"],
    }  # fmt: skip
    lines = rollout_lines(result)
    assert lines[0] == "acme: recovered from run r0: put back (interrupted at start): healthy"
    assert f"acme: replaced {D1[:19]} -> {D2[:19]} in 3.1 s (unavailable 1.2 s)" in lines
    assert f"globex: up to date on {D2[:19]}" in lines
    failed = next(line for line in lines if line.startswith("initech"))
    assert "FAILED" in failed
    assert "previous image repo@x healthy" in failed
    assert ("the data it ran on is kept in /d.failed-1 (7 file(s) changed since 2026-11-25T10:00:00Z: kv/a, kv/b, "
            "webui.db, webui.db-wal, uploads/x, ...); look at it before deleting it") in failed  # fmt: skip
    assert "put-back step failed: restore_site: nginx -t rejected" in failed
    assert "umbrella: not attempted (an earlier batch failed)" in lines
    assert "wonka: FAILED, nothing was done to it (looking at its container failed: 500)" in lines
    assert ("hooli: restored /s/0.tar.gz (taken 2026-11-25T10:00:00Z); 1 file(s) written since then are not in the "
            "restored data (kept in /d.replaced-1): kv/x") in lines  # fmt: skip
    assert "openwebui-ghost: removed (no tenant declares it; its data stays)" in lines
    assert lines[-1] == "warning: something to look at"


def test_check_mode_lines_say_what_would_change_and_why():
    lines = rollout_lines({"tenants": [
        {"name": "acme", "action": "replace", "drift": [{"field": "digest", "expected": D2, "actual": D1}]},
        {"name": "globex", "action": "none", "drift": []},
    ]})  # fmt: skip
    assert lines == [f"acme: would replace (digest: expected {D2}, actual {D1})", "globex: up to date"]


CHECK = {
    "tenants": [
        {"container": "openwebui-acme", "drift": [{"field": "digest", "expected": D2, "actual": D1}], "status": "running",
         "health": "healthy", "current_digest": D1, "files_changed": []},
        {"container": "openwebui-globex", "drift": [], "status": "running", "health": "healthy", "current_digest": D2,
         "files_changed": ["secrets.env"]},
    ],
    "unexpected": [{"name": "openwebui-ghost", "status": "running", "digest": D1}],
    "sites_to_change": [], "sites_to_remove": ["pinned-release-old.conf"], "pending_journal": ["acme"],
}  # fmt: skip


def test_the_drift_report_has_a_row_per_difference_and_per_unreachable_host():
    report = drift_report(["prod1", "prod2"], {"prod1": CHECK, "prod2": None}, f"repo@{D2}")
    fields = [(r["host"], r["container"], r["field"]) for r in report["rows"]]
    assert ("prod1", "openwebui-acme", "digest") in fields
    assert ("prod1", "openwebui-globex", "file secrets.env") in fields
    assert ("prod1", "openwebui-ghost", "unexpected") in fields
    assert ("prod1", "pinned-release-old.conf", "nginx site") in fields
    assert ("prod1", "acme", "journal") in fields
    assert ("prod2", "-", "host") in fields
    assert report["hosts"]["prod2"] == {
        "checked": False,
        "drifted": True,
        "error": "no result (unreachable, or failed before the check)",
    }
    assert drift_row(report["rows"][0]) == f"prod1 openwebui-acme digest: expected {D2}, actual {D1}"


def test_a_container_sharing_a_tenants_folder_is_a_drift_row_of_that_tenants_container():
    shared = {"acme": ["container backup mounts /opt/openwebui, which holds acme's folder"]}
    report = drift_report(["prod1"], {"prod1": {"tenants": [{"name": "acme", "container": "openwebui-acme"}],
                                                "shared": shared}}, "p")  # fmt: skip
    assert report["drifted"]
    assert report["rows"] == [{"host": "prod1", "container": "openwebui-acme", "field": "isolation",
                               "expected": "its folder and port its own", "actual": shared["acme"][0]}]  # fmt: skip


def test_a_certificate_expiring_soon_is_a_drift_row_of_its_tenants_container():
    certificates = {"acme": "expires in 4 day(s) (2026-12-07 UTC), sooner than the 14 days required: renew it"}
    report = drift_report(["prod1"], {"prod1": {"tenants": [{"name": "acme", "container": "openwebui-acme"}],
                                                "certificates": certificates}}, "p")  # fmt: skip
    assert report["drifted"]
    assert report["rows"] == [{"host": "prod1", "container": "openwebui-acme", "field": "certificate",
                               "expected": "readable, valid long enough (tls_min_days)",
                               "actual": certificates["acme"]}]  # fmt: skip


def test_renderings_escape_and_count():
    report = drift_report(
        ["prod1"], {"prod1": {**CHECK, "unexpected": [{"name": "a|b", "status": "x\ny", "digest": None}]}}, "p"
    )
    markdown = drift_markdown(report, "2026-11-25T00:00:00Z")
    assert "a\\|b" in markdown
    assert "x y" in markdown
    suite = ET.fromstring(drift_junit(report))  # noqa: S314 - our own rendering
    assert suite.get("failures") == str(sum(1 for case in suite if case.find("failure") is not None))
    clean = drift_report(["prod1"], {"prod1": {"tenants": [], "unexpected": []}}, "p")
    assert "**No drift** on 1 host(s)." in drift_markdown(clean, "now")
