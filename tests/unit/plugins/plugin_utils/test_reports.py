# SPDX-License-Identifier: GPL-3.0-or-later
"""What operators read: lines per tenant, and the fleet drift report in JSON, Markdown and JUnit, written atomically
and only when it changes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.pinned.release.plugins.plugin_utils._reports import (
    drift_junit,
    drift_markdown,
    drift_report,
    drift_row,
    rollout_lines,
    write_drift_reports,
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


CHECK = {  # a host's verify_container result for its tenants
    "containers": [
        {"name": "openwebui-acme", "tenant": "acme", "drift": [{"field": "digest", "expected": D2, "actual": D1}],
         "status": "running", "health": "healthy", "digest": D1, "files_changed": []},
        {"name": "openwebui-globex", "tenant": "globex", "drift": [], "status": "running", "health": "healthy",
         "digest": D2, "files_changed": ["secrets.env"]},
    ],
    "unexpected": [{"name": "openwebui-ghost", "status": "running", "digest": D1}],
    "sites_to_change": [], "sites_to_remove": ["pinned-release-old.conf"], "pending_journal": ["acme"],
}  # fmt: skip
ACME = {"name": "openwebui-acme", "tenant": "acme"}


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
    assert report["containers"]["prod1"][0] == {"name": "openwebui-acme", "status": "running", "health": "healthy",
                                                "digest": D1}  # fmt: skip


def test_a_failed_check_is_a_host_row_with_its_message():
    report = drift_report(["prod1"], {"prod1": {"failed": True, "msg": "Docker engine error at unix://x: gone"}}, "p")
    assert report["rows"] == [{"host": "prod1", "container": "-", "field": "host", "expected": "checked",
                               "actual": "Docker engine error at unix://x: gone"}]  # fmt: skip


def test_a_container_sharing_a_tenants_folder_is_a_drift_row_of_that_tenants_container():
    shared = {"acme": ["container backup mounts /opt/openwebui, which holds acme's folder"]}
    report = drift_report(["prod1"], {"prod1": {"containers": [ACME],
                                                "shared": shared}}, "p")  # fmt: skip
    assert report["drifted"]
    assert report["rows"] == [{"host": "prod1", "container": "openwebui-acme", "field": "isolation",
                               "expected": "its folder and port its own", "actual": shared["acme"][0]}]  # fmt: skip


def test_a_certificate_expiring_soon_is_a_drift_row_of_its_tenants_container():
    certificates = {"acme": "expires in 4 day(s) (2026-12-07 UTC), sooner than the 14 days required: renew it"}
    report = drift_report(["prod1"], {"prod1": {"containers": [ACME],
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
    clean = drift_report(["prod1"], {"prod1": {"containers": [], "unexpected": []}}, "p")
    assert "**No drift** on 1 host(s)." in drift_markdown(clean, "now")


def written(directory) -> dict:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def test_the_reports_are_written_once_and_a_second_run_of_the_same_findings_changes_nothing(tmp_path):
    report = drift_report(["prod1"], {"prod1": CHECK}, f"repo@{D2}")
    first = write_drift_reports(str(tmp_path / "drift"), report, "2026-12-04T01:00:00Z")
    assert first["written"] == ["report.json", "report.md", "report.xml"]
    assert (first["previously_drifted"], first["generated_at"]) == (False, "2026-12-04T01:00:00Z")
    files = written(tmp_path / "drift")
    assert json.loads(files["report.json"]) == {**report, "generated_at": "2026-12-04T01:00:00Z"}
    assert "Generated 2026-12-04T01:00:00Z" in files["report.md"]
    again = write_drift_reports(str(tmp_path / "drift"), report, "2026-12-04T02:00:00Z")
    assert (again["written"], again["diff"], again["generated_at"]) == ([], [], "2026-12-04T01:00:00Z")
    assert again["previously_drifted"] is True
    assert written(tmp_path / "drift") == files


def test_new_findings_rewrite_the_reports_with_a_diff(tmp_path):
    write_drift_reports(str(tmp_path), drift_report(["prod1"], {"prod1": CHECK}, "p"), "t1")
    clean = drift_report(["prod1"], {"prod1": {"containers": [], "unexpected": []}}, "p")
    cleared = write_drift_reports(str(tmp_path), clean, "t2")
    assert cleared["written"] == ["report.json", "report.md", "report.xml"]
    assert cleared["previously_drifted"] is True
    assert [d["before_header"] for d in cleared["diff"]] == [str(tmp_path / n) for n in cleared["written"]]
    assert json.loads((tmp_path / "report.json").read_text())["generated_at"] == "t2"


def test_check_mode_says_what_would_change_and_writes_nothing(tmp_path):
    result = write_drift_reports(str(tmp_path / "drift"), drift_report(["prod1"], {"prod1": CHECK}, "p"), "t", True)
    assert result["written"] == ["report.json", "report.md", "report.xml"]
    assert not (tmp_path / "drift").exists()


def test_a_write_that_fails_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    write_drift_reports(str(tmp_path), drift_report(["prod1"], {"prod1": CHECK}, "p"), "t1")
    before = written(tmp_path)

    def no_room(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", no_room)
    clean = drift_report(["prod1"], {"prod1": {"containers": [], "unexpected": []}}, "p")
    with pytest.raises(OSError, match="No space left"):
        write_drift_reports(str(tmp_path), clean, "t2")
    assert written(tmp_path) == before, "a report half-written, or a temporary file left behind"
