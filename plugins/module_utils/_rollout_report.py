# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a transaction says about itself: one entry per tenant, the audit lines, the module's result."""

from __future__ import annotations

import os
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._rollout_model import (
    Move,
)
from ansible_collections.pinned.release.plugins.module_utils._snapshots import (
    iso,
)


class ReportMixin:
    """Results and audit of ``Rollout``."""

    def _entry(self, spec: dict, outcome: str, facts: Optional[dict], move: Optional[Move] = None) -> dict:
        entry = {"name": spec["name"], "container": spec["container"], "outcome": outcome, "image": spec["image"]}
        if facts is not None:
            entry["previous_image"] = facts["image"]
        if move is not None:
            rec = move.record
            entry["previous_image"] = (rec["previous"] or {}).get("image")
            entry["previous_digest"] = (rec["previous"] or {}).get("digest")
            entry["snapshot"] = (rec.get("snapshot") or {}).get("snapshot")
            timings = move.timings
            entry["timings"] = {k: v for k, v in {
                "total_s": round(timings.get("end", self.clock()) - timings["begin"], 3) if "begin" in timings else None,
                "unavailable_s": round(timings["ready"] - timings["stop"], 3) if "ready" in timings and "stop" in timings else None,
                "start_to_ready_s": round(timings["ready"] - timings["started"], 3) if "ready" in timings and "started" in timings else None,
                "snapshot_s": timings.get("snapshot_s"),
                "checks_s": timings.get("checks_s"),
                "first_attempt_s": round(timings["first_attempt_failed"] - timings["first_started"], 3)
                if "first_attempt_failed" in timings and "first_started" in timings
                else None,
                "stop_to_start_s": round(timings["first_started"] - timings["stop"], 3)
                if "first_started" in timings and "stop" in timings
                else None,
            }.items() if v is not None}  # fmt: skip
            if rec.get("restore"):
                entry["restored_from"] = rec["restore"]["snapshot"]
                entry["restored_taken_at"] = (
                    iso(rec["restore"]["taken_epoch"]) if rec["restore"].get("taken_epoch") else None
                )
                entry["set_aside"] = rec["restore"].get("aside")
                if (
                    rec["restore"].get("aside")
                    and rec["restore"].get("taken_epoch")
                    and os.path.isdir(rec["restore"]["aside"])
                ):
                    entry["lost_writes"] = move.data.writes_since(
                        rec["restore"]["aside"], rec["restore"]["taken_epoch"]
                    )
            if move.failure:
                entry["failure"] = move.failure
                entry["logs"] = move.logs
            if rec.get("standing"):
                entry["standing"] = rec["standing"]
                entry["putback_errors"] = (rec.get("putback") or {}).get("errors") or []
                entry["failed_data_aside"] = rec.get("failed_aside")
                entry["data_restored_from"] = rec.get("data_restored_from")
        return entry

    def _audit_record(self, rec: dict, result: str, entry: dict) -> dict:
        return {
            "tenant": rec["tenant"],
            "container": rec.get("container"),
            "from": (rec.get("previous") or {}).get("digest"),
            "from_image": (rec.get("previous") or {}).get("image"),
            "to": rec["target"]["digest"],
            "result": result,
            "snapshot": (rec.get("snapshot") or {}).get("snapshot"),
            "restored_from": (rec.get("restore") or {}).get("snapshot"),
            "standing": entry.get("standing"),
            "failure": entry.get("failure"),
            "duration_s": (entry.get("timings") or {}).get("total_s"),
            "journal_run_id": rec.get("run_id"),
        }

    def _audit(self, record: dict) -> None:
        self.audit_sink(dict(record, run_id=self.run["run_id"], operator=self.run.get("operator"),
                             reason=self.run.get("reason")))  # fmt: skip

    def _result(self, recovered: list) -> dict:
        tenants = [self.results[s["name"]] for s in self.specs if s["name"] in self.results]
        failed = [t for t in tenants if t["outcome"] == "put_back"]
        result = {
            "changed": self.changed,
            "tenants": tenants,
            "recovered": recovered,
            "nginx_changed": sorted(set(self.nginx_changes)),
            "removed_undeclared": self.results.get("_undeclared", []),
            "warnings": self.warnings,
            "image_versions": {image: version for image, version in self._expected_versions.items() if version},
        }
        if failed:
            parts = []
            for entry in failed:
                parts.append(f"{entry['name']} failed on {entry['image'].rsplit('@', 1)[-1]} ({entry.get('failure')}); "
                             f"{entry.get('standing')}")  # fmt: skip
            not_attempted = [t["name"] for t in tenants if t["outcome"] == "not_attempted"]
            result["failed"] = True
            prefix = f"{self.run['host']}: " if self.run.get("host") else ""
            result["msg"] = (
                prefix + "; ".join(parts) + (f"; not attempted: {', '.join(not_attempted)}" if not_attempted else "")
            )
        return result
