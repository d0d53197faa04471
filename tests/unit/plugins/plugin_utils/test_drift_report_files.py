# SPDX-License-Identifier: GPL-3.0-or-later
"""The drift report's files are one report, never a mix of two runs."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pinned.release.plugins.plugin_utils._reports import drift_report, write_drift_reports

D1, D2 = ("sha256:" + c * 64 for c in "12")
CHECK = {
    "containers": [
        {
            "name": "openwebui-a",
            "tenant": "a",
            "exists": True,
            "status": "running",
            "health": "healthy",
            "restart_count": 0,
            "image": f"repo@{D1}",
            "digest": D1,
            "expected_digest": D2,
            "drift": [{"field": "image", "expected": D2, "actual": D1}],
            "action": "replace",
            "files_changed": [],
        }
    ],
    "unexpected": [],
}


def _files(directory):
    return {name: (directory / name).read_text() for name in sorted(os.listdir(directory))}


def test_a_second_file_that_fails_leaves_no_mix_of_two_reports(tmp_path, monkeypatch):
    write_drift_reports(str(tmp_path), drift_report(["prod1"], {"prod1": CHECK}, "p"), "t1")
    before = _files(tmp_path)
    real_replace, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("os.replace", second_fails)
    clean = drift_report(["prod1"], {"prod1": {"containers": [], "unexpected": []}}, "p")
    with pytest.raises(OSError, match="No space left"):
        write_drift_reports(str(tmp_path), clean, "t2")
    assert _files(tmp_path) == before, "report.json says t2/clean while report.md and report.xml still say t1/drifted"


def test_a_garbled_earlier_report_is_replaced_not_a_traceback(tmp_path):
    (tmp_path / "report.md").write_bytes(b"\xff\xfe garbage")
    (tmp_path / "report.json").write_bytes(b"\xff\xfe garbage")
    files = write_drift_reports(str(tmp_path), drift_report(["prod1"], {"prod1": CHECK}, "p"), "t1")
    assert files["written"] == ["report.json", "report.md", "report.xml"]
    assert "openwebui-a" in (tmp_path / "report.md").read_text()
