# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the operator reads on the controller: one line per tenant of a transaction, and the fleet drift report (built
and written by the drift_report action)."""

from __future__ import annotations

import contextlib
import json
import os
import xml.etree.ElementTree as ET
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._format import markdown_cell, short_digest
from ansible_collections.pinned.release.plugins.module_utils._fs import replace_with, write_atomic, write_temp
from ansible_collections.pinned.release.plugins.module_utils._rollout_report import writes_words

NO_RESULT = "no result (unreachable, or failed before the check)"


def rollout_lines(result: dict) -> list:
    """``acme: replaced sha256:... -> sha256:... in 3.1 s (unavailable 1.2 s)`` for each tenant of a tenant_rollout result."""
    lines = []
    for entry in result.get("recovered") or []:
        lines.append(f"{entry.get('tenant')}: recovered from run {entry.get('run_id')}: {entry.get('outcome')}")
    for entry in result.get("tenants") or []:
        name = entry.get("name")
        if "action" in entry:  # check mode
            if entry["action"] == "none":
                lines.append(f"{name}: up to date")
            else:
                why = "; ".join(f"{d['field']}: expected {_text(d['expected'])}, actual {_text(d['actual'])}"
                                for d in entry.get("drift") or [])  # fmt: skip
                lines.append(f"{name}: would {entry['action']} ({why or 'files differ'})")
            continue
        outcome = entry.get("outcome")
        image = entry.get("image")
        timings = entry.get("timings") or {}
        if outcome == "unchanged":
            lines.append(f"{name}: up to date on {short_digest(image)}")
        elif outcome in ("replaced", "created"):
            was = (
                f"{short_digest(entry.get('previous_digest') or entry.get('previous_image'))} -> "
                if outcome == "replaced"
                else ""
            )
            line = f"{name}: {outcome} {was}{short_digest(image)} in {timings.get('total_s', '?')} s"
            if timings.get("unavailable_s") is not None:
                line += f" (unavailable {timings['unavailable_s']} s)"
            lines.append(line)
            if entry.get("restored_from"):
                lost = entry.get("lost_writes") or []
                lines.append(f"{name}: restored {entry['restored_from']} (taken {entry.get('restored_taken_at', '?')}); " + (
                    "no writes since then were lost" if not lost else
                    f"{len(lost)} file(s) written since then are not in the restored data (kept in "
                    f"{entry.get('set_aside')}): {', '.join(lost[:10])}"
                ))  # fmt: skip
        elif outcome == "put_back":
            line = f"{name}: FAILED on {short_digest(image)} ({entry.get('failure')}); {entry.get('standing')}"
            if entry.get("writes_set_aside"):
                line += f"; {writes_words(entry['writes_set_aside'])}"
            for error in entry.get("putback_errors") or []:
                line += f"; put-back step failed: {error}"
            lines.append(line)
        elif outcome == "failed":
            lines.append(f"{name}: FAILED, nothing was done to it ({entry.get('failure')})")
        elif outcome == "not_attempted":
            lines.append(f"{name}: not attempted (an earlier batch failed)")
    for name in result.get("removed_undeclared") or []:
        lines.append(f"{name}: removed (no tenant declares it; its data stays)")
    lines.extend(f"warning: {w}" for w in result.get("warnings") or [])
    return lines


def _text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "-" if value is None else str(value)


def drift_report(hosts: list, results: dict, pin_image: str) -> dict:
    """A fleet report from each host's verify_container result for its tenants (None: unreachable or failed)."""
    rows, per_host, tenants = [], {}, {}
    for host in hosts:
        result = results.get(host)
        if not isinstance(result, dict) or "containers" not in result or result.get("failed"):
            reason = (result or {}).get("msg") if isinstance(result, dict) else None
            rows.append(
                {"host": host, "container": "-", "field": "host", "expected": "checked", "actual": reason or NO_RESULT}
            )
            per_host[host] = {"checked": False, "drifted": True, "error": reason or NO_RESULT}
            tenants[host] = []
            continue
        host_rows = []
        for entry in result["containers"]:
            for item in entry.get("drift") or []:
                host_rows.append({"host": host, "container": entry["name"], **item})
            for name in entry.get("files_changed") or []:
                host_rows.append({"host": host, "container": entry["name"], "field": f"file {name}",
                                  "expected": "as declared", "actual": "differs"})  # fmt: skip
        for extra in result.get("unexpected") or []:
            host_rows.append({"host": host, "container": extra["name"], "field": "unexpected", "expected": "not running",
                              "actual": f"{extra.get('status')} on {extra.get('digest') or extra.get('image')}"})  # fmt: skip
        containers = {e.get("tenant"): e.get("name") for e in result["containers"]}
        for tenant, phrases in sorted((result.get("shared") or {}).items()):
            host_rows += [{"host": host, "container": containers.get(tenant, tenant), "field": "isolation",
                           "expected": "its folder and port its own", "actual": phrase} for phrase in phrases]  # fmt: skip
        for tenant, problem in sorted((result.get("certificates") or {}).items()):
            host_rows.append({"host": host, "container": containers.get(tenant, tenant), "field": "certificate",
                              "expected": "readable, valid long enough (tls_min_days)", "actual": problem})  # fmt: skip
        for name in result.get("sites_to_change") or []:
            host_rows.append({"host": host, "container": name, "field": "nginx site", "expected": "as declared",
                              "actual": "differs or missing"})  # fmt: skip
        for name in result.get("sites_to_remove") or []:
            host_rows.append({"host": host, "container": name, "field": "nginx site", "expected": "absent",
                              "actual": "present (no tenant declares it)"})  # fmt: skip
        for name in result.get("pending_journal") or []:
            host_rows.append({"host": host, "container": name, "field": "journal", "expected": "no transaction in progress",
                              "actual": "an interrupted transaction (the next deploy recovers it)"})  # fmt: skip
        rows += host_rows
        per_host[host] = {"checked": True, "drifted": bool(host_rows), "tenants": len(result["containers"])}
        tenants[host] = [{"name": e["name"], "status": e.get("status"), "health": e.get("health"),
                          "digest": e.get("digest")} for e in result["containers"]]  # fmt: skip
    return {"pin": pin_image, "drifted": bool(rows), "hosts": per_host, "rows": rows, "containers": tenants}


def drift_markdown(report: dict, generated_at: str) -> str:
    drifted_hosts = sum(1 for h in report["hosts"].values() if h["drifted"])
    lines = ["# Drift report", "", f"Generated {generated_at} against the pin `{report['pin']}` (a later check that finds the "
             "same leaves this report as it is).", "",
             f"**DRIFT** on {drifted_hosts} of {len(report['hosts'])} host(s)." if report["drifted"]
             else f"**No drift** on {len(report['hosts'])} host(s).", ""]  # fmt: skip
    if report["rows"]:
        lines += ["| Host | Container | Field | Expected | Actual |", "|---|---|---|---|---|"]
        for row in report["rows"]:
            cells = [row["host"], row["container"], row["field"], _text(row["expected"]), _text(row["actual"])]
            lines.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
        lines.append("")
    lines += ["## Containers", "", "| Host | Container | Status | Health | Digest |", "|---|---|---|---|---|"]
    for host, entries in report["containers"].items():
        for entry in entries:
            lines.append(f"| {host} | {entry['name']} | {entry.get('status') or 'missing'} | {entry.get('health') or '-'} "
                         f"| `{short_digest(entry.get('digest'))}` |")  # fmt: skip
    return "\n".join(lines) + "\n"


def drift_junit(report: dict) -> str:
    """JUnit XML: one test case per host and container, failing where it drifted."""
    suite = ET.Element("testsuite", name="pinned.release drift")
    cases = failures = 0
    for host, entries in report["containers"].items():
        names = [e["name"] for e in entries] or ["-"]
        names += sorted({r["container"] for r in report["rows"] if r["host"] == host and r["container"] not in names})
        for name in names:
            cases += 1
            case = ET.SubElement(suite, "testcase", classname=host, name=name)
            problems = [r for r in report["rows"] if r["host"] == host and r["container"] == name]
            if problems:
                failures += 1
                message = "; ".join(
                    f"{p['field']}: expected {_text(p['expected'])}, actual {_text(p['actual'])}" for p in problems
                )
                ET.SubElement(case, "failure", message=message, type="drift").text = message
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def drift_row(row: dict) -> str:
    """``prod2 openwebui-acme digest: expected X, actual Y`` for the console."""
    return f"{row['host']} {row['container']} {row['field']}: expected {_text(row['expected'])}, actual {_text(row['actual'])}"


REPORT_FILES = ("report.json", "report.md", "report.xml")


def drift_files(report: dict, generated_at: str) -> dict:
    """{file name: content} of the fleet report: JSON, Markdown, JUnit XML."""
    return {
        "report.json": json.dumps({**report, "generated_at": generated_at}, indent=4, sort_keys=True) + "\n",
        "report.md": drift_markdown(report, generated_at),
        "report.xml": drift_junit(report),
    }


def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _put_back(path: str, before: Optional[bytes]) -> None:
    if before is None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    else:
        write_atomic(path, lambda handle: handle.write(before), 0o644)


def write_drift_reports(directory: str, report: dict, now: str, check_mode: bool = False) -> dict:
    """Write the report's files into ``directory``: only those that change, and as one report - every new file is
    written beside its old one first, then each replaces it (report.json last); a replace that fails puts the ones
    already replaced back, so the folder never holds a mix of two runs.

    A report that says what the previous one said keeps its ``generated_at``, so an unchanged fleet rewrites nothing.
    Returns {written (file names), diff, previously_drifted, generated_at}.
    """
    try:
        previous = json.loads((_read(os.path.join(directory, "report.json")) or b"{}").decode("utf-8"))
    except ValueError:  # not UTF-8, or not JSON: a report to replace
        previous = {}
    previous = previous if isinstance(previous, dict) else {}
    same = {k: v for k, v in previous.items() if k != "generated_at"} == json.loads(json.dumps(report))
    generated_at = previous["generated_at"] if same and isinstance(previous.get("generated_at"), str) else now
    changes, diff = {}, []
    for name, content in drift_files(report, generated_at).items():
        path = os.path.join(directory, name)
        before = _read(path)
        if before == content.encode("utf-8"):
            continue
        changes[name] = (path, before, content)
        diff.append({"before_header": path, "after_header": path, "after": content,
                     "before": (before or b"").decode("utf-8", "replace")})  # fmt: skip
    written = list(changes)
    order = sorted(changes, key=lambda name: name == "report.json")  # the JSON, the one runs read back, last
    if changes and not check_mode:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        staged: dict = {}
        try:
            for name in order:
                path, _before, content = changes[name]
                staged[name] = write_temp(path, content, 0o644)
            replaced = []
            try:
                for name in order:
                    replace_with(staged.pop(name), changes[name][0])
                    replaced.append(name)
            except OSError:
                for name in replaced:
                    _put_back(*changes[name][:2])
                raise
        finally:
            for temp in staged.values():
                with contextlib.suppress(OSError):
                    os.remove(temp)
    return {"written": written, "diff": diff, "previously_drifted": previous.get("drifted") is True,
            "generated_at": generated_at}  # fmt: skip
