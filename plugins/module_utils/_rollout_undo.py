# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Putting a tenant back, finishing a commit, and recovering what a dead run left in the journal.

Every put-back step runs even when an earlier one failed; each step is recorded as done in the journal,
so a put-back interrupted by a crash goes on where it stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._journal import write_atomic
from ansible_collections.pinned.release.plugins.module_utils._nginx import (
    site_file,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import (
    Probe,
    RolloutError,
)
from ansible_collections.pinned.release.plugins.module_utils._snapshots import (
    TenantData,
)


class UndoMixin:
    """Commit, put-back and recovery of ``Rollout``."""

    def finish_commit(self, rec: dict, spec: Optional[dict]) -> None:
        """The idempotent end of a move (also run by recovery): old container gone, files written, rotation."""
        if rec["previous"]:
            self.engine.remove(rec["previous"]["id"])
        if rec.get("adopt_data"):
            self.warnings.append(
                f"{rec['tenant']}: adopted from {rec.get('previous_name')}, whose data stays where it was "
                f"({rec['adopt_data']}): remove it by hand once you no longer need it"
            )
        data = TenantData(rec["tenant"], rec["tenant_dir"], self.settings.snapshot_exclude)
        if spec is not None:
            self._write_config_files(spec)
        keep_paths = (rec["snapshot"]["snapshot"],) if rec.get("snapshot") else ()
        protect = tuple(d for d in (rec["target"]["digest"], *self.settings.protect_digests) if d)
        removed = data.rotate(self.settings.snapshot_keep, protect, keep_paths)
        if removed:
            rec["rotated"] = removed
        _gone, only_copies = data.bound_asides(self.settings.aside_keep)
        if only_copies:
            self.warnings.append(
                f"{rec['tenant']}: {len(only_copies)} set-aside data folder(s) hold writes found nowhere else "
                f"({', '.join(os.path.basename(a['path']) for a in only_copies)}): look at them and delete them by hand "
                "(docs/recovery.md)"
            )

    def put_back(self, rec: dict, spec: Optional[dict]) -> None:
        """Undo a move, every step even when an earlier one failed; sets rec['standing'] and rec['errors']."""
        rec["step"] = "putback"
        putback = rec.setdefault("putback", {"done": [], "errors": []})
        self.journal.save(rec)
        self._crashpoint("putback", rec["tenant"])
        tenant_dir = spec["dir"] if spec else rec["tenant_dir"]
        data = TenantData(rec["tenant"], tenant_dir, self.settings.snapshot_exclude)
        for name, function in (
            ("remove_new", self._pb_remove_new),
            ("restore_data", self._pb_restore_data),
            ("restore_site", self._pb_restore_site),
            ("rename_previous", self._pb_rename_previous),
            ("start_previous", self._pb_start_previous),
            ("restore_files", self._pb_restore_files),
        ):
            if name in putback["done"]:
                continue
            try:
                function(rec, data)
                putback["done"].append(name)
            except Exception as exc:  # every put-back step runs; what failed is reported
                putback["errors"].append(f"{name}: {self.mask(str(exc))}")
            self.journal.save(rec)
            self._crashpoint(f"putback.{name}", rec["tenant"])
        rec["standing"], healthy = self._standing(rec)
        self.journal.save(rec)
        if healthy or (not putback["errors"] and not (rec["previous"] or {}).get("running")):
            self.journal.done(rec["tenant"])

    def _pb_remove_new(self, rec: dict, _data: TenantData) -> None:
        if rec["next"].get("id"):
            self.engine.remove(rec["next"]["id"])
        self.engine.remove(rec["next"]["name"])

    def _pb_restore_data(self, rec: dict, data: TenantData) -> None:
        restore = rec.get("restore")
        if not rec.get("started"):
            # The new version never ran: undo a restore that was put in place for it (a copy of a snapshot).
            if restore:
                if restore.get("extracted") and os.path.isdir(restore["extracted"]):
                    shutil.rmtree(restore["extracted"], ignore_errors=True)
                if restore.get("placed") and restore.get("aside") and os.path.isdir(restore["aside"]):
                    shutil.rmtree(data.data_dir, ignore_errors=True)
                if restore.get("aside") and os.path.isdir(restore["aside"]) and not os.path.exists(data.data_dir):
                    data.put_in_place(restore["aside"])
            return
        if not self.settings.restore_data_on_failure or not rec.get("snapshot"):
            return
        if restore and restore.get("aside_exact") and restore.get("aside") and os.path.isdir(restore["aside"]):
            source = restore["aside"]
        else:
            source = None
        if os.path.isdir(data.data_dir):
            rec["failed_aside"] = data.set_aside(
                "failed", {"run_id": self.run["run_id"], "covered_by": None}, now=self.clock()
            )
            self.journal.save(rec)
        try:
            if source is None:
                source = data.extract(rec["snapshot"]["snapshot"], now=self.clock())
            data.put_in_place(source)
        except OSError:
            if not os.path.exists(data.data_dir) and rec.get("failed_aside"):
                data.put_in_place(rec["failed_aside"])  # nothing lost: back on the data it had
                rec["failed_aside"] = None
            raise
        rec["data_restored_from"] = rec["snapshot"]["snapshot"] if source != (restore or {}).get("aside") else source

    def _pb_restore_site(self, rec: dict, _data: TenantData) -> None:
        if self.nginx is None or not rec.get("site_switched"):
            return
        self.nginx_changes += self.nginx.apply({site_file(rec["tenant"]): rec.get("previous_site")})

    def _pb_rename_previous(self, rec: dict, _data: TenantData) -> None:
        previous = rec["previous"]
        if not previous:
            return
        name = rec.get("previous_name") or rec["container"]
        holder = self.engine.container(name)
        if holder is not None and holder["id"] != previous["id"]:
            raise RolloutError(f"{name} is taken by another container ({holder['id'][:12]}); "
                               f"the previous one is {rec['prev_name']}")  # fmt: skip
        if holder is None:
            self.engine.rename(previous["id"], name)

    def _pb_start_previous(self, rec: dict, _data: TenantData) -> None:
        previous = rec["previous"]
        if previous and previous["running"]:
            facts = self.engine.container(previous["id"])
            if facts is None:
                raise RolloutError(f"the previous container of {rec['tenant']} no longer exists")
            if facts["status"] != "running":
                self.engine.start(previous["id"])

    def _pb_restore_files(self, rec: dict, _data: TenantData) -> None:
        for path, copy in (rec.get("previous_files") or {}).items():
            if copy and os.path.exists(copy):
                with open(copy, encoding="utf-8") as handle:
                    write_atomic(path, handle.read(), 0o600 if path.endswith("secrets.env") else 0o640)
            elif not copy:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _standing(self, rec: dict) -> tuple:
        """(where the tenant stands, in words, whether it is back and ready)."""
        previous = rec["previous"]
        container = rec.get("previous_name") or rec["container"]
        if not previous:
            return "not running (a new tenant: nothing ran before; fix the cause and re-run)", False
        if not previous["running"]:
            return f"stopped, as it was before, on {previous['image']}", False
        facts = self.engine.container(previous["id"])
        errors = (rec.get("putback") or {}).get("errors") or []
        if facts is None or facts["status"] not in ("running", "restarting"):
            why = "; ".join(errors) or ("its container is gone" if facts is None else f"it is {facts['status']}")
            return (f"DOWN: no running container ({why}). To fix: docker start {container}, or re-run the deploy "
                    "(it recovers from the journal); docs/recovery.md"), False  # fmt: skip
        port = next((int(p.split(":")[-2]) for p in facts.get("published_ports") or [] if p.count(":") >= 2), None)
        probe = Probe(rec["tenant"], previous["id"], port or 0, previous["image"])
        failures = self.wait_ready([probe]) if port else {}
        if not failures:
            health = self._docker_health_settled(previous["id"])
            if health == "unhealthy":
                return (f"previous image {previous['image']} running, but its healthcheck reports unhealthy; "
                        f"docker logs {container}"), False  # fmt: skip
            return f"previous image {previous['image']} healthy", True
        return (f"previous image {previous['image']} running but NOT ready ({failures[rec['tenant']]}); "
                f"docker logs {container}"), False  # fmt: skip

    def _spec_for(self, rec: dict) -> Optional[dict]:
        return next((s for s in self.specs if s["name"] == rec["tenant"]), None)

    def recover(self) -> list:
        """Finish or undo what a dead run left in the journal; one outcome per tenant."""
        outcomes = []
        for tenant, rec in self.journal.pending().items():
            spec = self._spec_for(rec)
            step = rec.get("step")
            if step == "commit":
                self.finish_commit(rec, spec)
                self._audit(self._audit_record(rec, "recovered: commit finished", {}))
                self.journal.done(tenant)
                outcome = "finished the interrupted commit"
            elif step in ("planned", "create") and not rec.get("started"):
                with contextlib.suppress(Exception):
                    if rec["next"].get("id"):
                        self.engine.remove(rec["next"]["id"])
                    self.engine.remove(rec["next"]["name"])
                self._audit(self._audit_record(rec, "recovered: nothing had been stopped", {}))
                self.journal.done(tenant)
                outcome = "nothing had been stopped; removed the half-made container"
            else:
                self.put_back(rec, spec)
                self._audit(
                    self._audit_record(
                        rec, f"recovered: put back (interrupted at {step})", {"standing": rec.get("standing")}
                    )
                )
                outcome = f"put back (interrupted at {step}): {rec.get('standing')}"
            self.changed = True
            outcomes.append({"tenant": tenant, "run_id": rec.get("run_id"), "step": step, "outcome": outcome})
        return outcomes
