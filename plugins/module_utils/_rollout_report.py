# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a transaction says about itself: one entry per tenant, the audit lines, the module's result.

Everything a run reports goes through one ``Report``: the other parts change containers, data and sites; this
one only records what happened.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._rollout_model import Move
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import MoveRecord
from ansible_collections.pinned.release.plugins.module_utils._snapshots import iso


def writes_words(writes: dict) -> str:
    """``data the new version ran on is in <aside> (N file(s) changed since <time>: a, b)``."""
    sample = ", ".join(writes["files"][:5]) + (", ..." if writes["count"] > 5 else "")
    changed = f"{writes['count']} file(s) changed since {writes['since']}" + (f": {sample}" if sample else "")
    return f"the data it ran on is kept in {writes['aside']} ({changed}); look at it before deleting it"


def declared(spec: dict) -> Optional[dict]:
    """What the tenant's container is declared with, as the testing checklist's container checks judge it (None for
    a tenant the run found in its journal but no longer declared)."""
    if "dir" not in spec:
        return None
    return {"folder": spec["dir"], "mounts": [spec["mount"]], "published_ports": [spec["published"]],
            "stop_timeout": spec["stop_timeout"]}  # fmt: skip


class Report:
    def __init__(self, run: dict, clock: Callable, audit_sink: Callable) -> None:
        self.run = run
        self.clock = clock
        self.audit_sink = audit_sink
        self.results: dict = {}
        self.warnings: list = []
        self.changed = False
        self.recovered: list = []
        self.removed_undeclared: list = []
        self.image_versions: dict = {}

    # -------------------------------------------------------------- per tenant
    def entry(self, spec: dict, outcome: str, facts: Optional[dict] = None, move: Optional[Move] = None,
              failure: Optional[str] = None) -> dict:  # fmt: skip
        entry = {"name": spec["name"], "container": spec["container"], "outcome": outcome, "image": spec["image"],
                 "declared": declared(spec)}  # fmt: skip
        if failure:
            entry["failure"] = failure
        if facts is not None:
            entry["previous_image"] = facts["image"]
        if move is not None:
            entry.update(self._move_fields(move))
        self.results[spec["name"]] = entry
        return entry

    def _move_fields(self, move: Move) -> dict:
        rec = move.record
        fields: dict = {
            "previous_image": rec.previous.image if rec.previous else None,
            "previous_digest": rec.previous.digest if rec.previous else None,
            "snapshot": (rec.snapshot or {}).get("snapshot"),
            "timings": self._timings(move.timings),
        }
        if rec.restore is not None:
            fields["restored_from"] = rec.restore.snapshot
            fields["restored_taken_at"] = iso(rec.restore.taken_epoch) if rec.restore.taken_epoch else None
            if os.path.isdir(rec.restore.aside):
                fields["set_aside"] = rec.restore.aside
                if rec.restore.taken_epoch:
                    fields["lost_writes"] = move.data.writes_since(rec.restore.aside, rec.restore.taken_epoch)[1]
        if move.failure:
            fields["failure"] = move.failure
            fields["logs"] = move.logs
        if rec.standing:
            fields["standing"] = rec.standing
            fields["putback_errors"] = list(rec.put_back.errors) if rec.put_back else []
        if rec.writes_aside is not None:
            fields["writes_set_aside"] = dataclasses.asdict(rec.writes_aside)
            fields["failed_data_aside"] = rec.writes_aside.aside
        return fields

    def _timings(self, timings: dict) -> dict:
        """Seconds: the whole move, the tenant's unavailability, start to ready, and each step's own (``<step>_s``)."""

        def span(end: str, begin: str) -> Optional[float]:
            return round(timings[end] - timings[begin], 3) if end in timings and begin in timings else None

        figures = {
            "total_s": round(timings.get("end", self.clock()) - timings["begin"], 3) if "begin" in timings else None,
            "unavailable_s": span("ready", "stop"),
            "start_to_ready_s": span("ready", "started"),
            "first_attempt_s": span("first_attempt_failed", "first_started"),
            "stop_to_start_s": span("first_started", "stop"),
            **{key: value for key, value in timings.items() if key.endswith("_s")},
        }
        return {key: value for key, value in figures.items() if value is not None}

    # -------------------------------------------------------------- the audit log
    def audit(self, tenant: Optional[str], result: str, record: Optional[MoveRecord] = None,
              entry: Optional[dict] = None, **extra) -> None:  # fmt: skip
        """One audit line, built here only: the run, who, why, and what the record and entry say."""
        line: dict = {"tenant": tenant, "result": result, "run_id": self.run["run_id"],
                      "operator": self.run.get("operator"), "reason": self.run.get("reason")}  # fmt: skip
        if record is not None:
            line.update({
                "container": record.container,
                "from": record.previous.digest if record.previous else None,
                "from_image": record.previous.image if record.previous else None,
                "to": record.target_digest,
                "snapshot": (record.snapshot or {}).get("snapshot"),
                "restored_from": record.restore.snapshot if record.restore else None,
                "set_aside": record.restore.aside if record.restore and os.path.isdir(record.restore.aside) else None,
                "standing": record.standing,
                "journal_run_id": record.run_id,
                "writes_set_aside": dataclasses.asdict(record.writes_aside) if record.writes_aside else None,
            })  # fmt: skip
        if entry:
            line["failure"] = entry.get("failure")
            line["duration_s"] = (entry.get("timings") or {}).get("total_s")
        line.update(extra)
        self.audit_sink(line)

    # -------------------------------------------------------------- the module's result
    def result(self, specs: list, nginx_changed: list) -> dict:
        tenants = [self.results[s["name"]] for s in specs if s["name"] in self.results]
        failed = [t for t in tenants if t["outcome"] in ("put_back", "failed")]
        result = {
            "changed": self.changed,
            "tenants": tenants,
            "recovered": self.recovered,
            "nginx_changed": sorted(set(nginx_changed)),
            "removed_undeclared": self.removed_undeclared,
            "warnings": self.warnings,
            "image_versions": {image: version for image, version in self.image_versions.items() if version},
        }
        for outcome in self.recovered:
            if outcome.get("writes_set_aside"):
                self.warnings.append(
                    f"{outcome['tenant']}: recovered by a put-back: {writes_words(outcome['writes_set_aside'])}"
                )
        if failed:
            parts = []
            for entry in failed:
                part = f"{entry['name']} failed on {entry['image'].rsplit('@', 1)[-1]} ({entry.get('failure')})"
                if entry.get("standing"):
                    part += f"; {entry['standing']}"
                if entry.get("writes_set_aside"):
                    part += f"; {writes_words(entry['writes_set_aside'])}"
                parts.append(part)
            not_attempted = [t["name"] for t in tenants if t["outcome"] == "not_attempted"]
            result["failed"] = True
            prefix = f"{self.run['host']}: " if self.run.get("host") else ""
            result["msg"] = (
                prefix + "; ".join(parts) + (f"; not attempted: {', '.join(not_attempted)}" if not_attempted else "")
            )
        return result
