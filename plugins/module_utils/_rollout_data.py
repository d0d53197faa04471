# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tenant's data in a move: adoption's copy, the snapshot, a restore, and bringing the data back in a put-back.

Every folder this part makes or renames is named in the journal before it exists, and what was done is read back
from the folders themselves (a rename is atomic: the source or the target exists, never both), so a re-run after a
crash at any instant knows where every byte is. Nothing here deletes data that is not also somewhere else: only
extractions of a snapshot and copies whose original is untouched are removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Callable

from ansible_collections.pinned.release.plugins.module_utils._rollout_model import Move, RolloutError
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import (
    Adopt,
    Checkpoints,
    DataPutBack,
    MoveRecord,
    Restore,
    Writes,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_steps import Step
from ansible_collections.pinned.release.plugins.module_utils._snapshots import SnapshotError, TenantData, iso


def copy_tree(source: str, destination: str) -> None:
    """A copy of ``source`` with modes, times and owners (the app may run as another user)."""
    shutil.copytree(source, destination, symlinks=True)
    for folder, dirs, files in os.walk(source):
        for name in [".", *dirs, *files]:
            original = os.path.normpath(os.path.join(folder, name))
            stat = os.lstat(original)
            with contextlib.suppress(PermissionError):
                os.lchown(os.path.join(destination, os.path.relpath(original, source)), stat.st_uid, stat.st_gid)


class DataSteps:
    def __init__(self, excludes: tuple, restore_on_failure: bool, run_id: str, clock: Callable,
                 checkpoints: Checkpoints) -> None:  # fmt: skip
        self.excludes = excludes
        self.restore_on_failure = restore_on_failure
        self.run_id = run_id
        self.clock = clock
        self.checkpoints = checkpoints

    def of(self, record: MoveRecord) -> TenantData:
        return TenantData(record.tenant, record.tenant_dir, self.excludes)

    # ============================================================== forward
    def adopt(self, move: Move, source: str) -> None:
        """Copy a hand-started container's data (it is stopped) into the tenant's data folder; the original is
        never touched, so putting that container back needs nothing from here."""
        rec, data = move.record, move.data
        occupied = os.path.isdir(data.data_dir) and bool(os.listdir(data.data_dir))
        rec.adopt = Adopt(source=source, copy=data.data_dir + ".adopting",
                          aside=data.new_path("replaced", self.clock()) if occupied else None)  # fmt: skip
        self.checkpoints.enter(rec, Step.ADOPT)
        if not os.path.isdir(source):
            raise RolloutError(f"its data {source} (adopt_from.data) is not a folder on this host")
        shutil.rmtree(rec.adopt.copy, ignore_errors=True)
        try:
            copy_tree(os.path.realpath(source), rec.adopt.copy)
        except OSError as exc:
            shutil.rmtree(rec.adopt.copy, ignore_errors=True)  # a partial copy (a full disk) would only take space
            raise RolloutError(f"copying its data from {source} failed: {exc}") from exc
        self.checkpoints.mark(rec, "adopt.copied")
        if rec.adopt.aside and os.path.isdir(data.data_dir):
            data.set_aside_to(rec.adopt.aside, {"run_id": self.run_id, "covered_by": None}, now=self.clock())
        elif os.path.isdir(data.data_dir):
            os.rmdir(data.data_dir)  # empty
        self.checkpoints.mark(rec, "adopt.aside")
        data.put_in_place(rec.adopt.copy)
        self.checkpoints.mark(rec, "adopt.placed")

    def snapshot(self, move: Move, meta: dict) -> None:
        self.checkpoints.enter(move.record, Step.SNAPSHOT)
        try:
            move.record.snapshot = move.data.take(meta, now=self.clock())
        except OSError as exc:
            raise RolloutError(str(exc)) from exc
        self.checkpoints.mark(move.record, "snapshot.taken")

    def restore(self, move: Move, meta: dict, exact: bool, step: Step) -> None:
        """Put the data of snapshot ``meta`` in place; the current data is set aside, never deleted.

        ``step`` is RESTORE (before the target starts) or RETRY (after it failed on the current data).
        """
        rec, data, now = move.record, move.data, self.clock()
        rec.restore = Restore(snapshot=meta["snapshot"], taken_epoch=meta.get("taken_epoch"), exact=exact,
                              extracted=data.new_path("restoring", now), aside=data.new_path("replaced", now))  # fmt: skip
        label = step.value
        if step is Step.RESTORE:
            self.checkpoints.enter(rec, step)
        else:
            self.checkpoints.mark(rec, f"{label}.restore")
        try:
            data.extract_into(meta["snapshot"], rec.restore.extracted)
        except SnapshotError as exc:
            raise RolloutError(f"restoring its data from {meta['snapshot']} failed: {exc}") from exc
        self.checkpoints.mark(rec, f"{label}.extracted")
        if os.path.isdir(data.data_dir):
            covered = rec.snapshot["snapshot"] if exact and rec.snapshot else None
            data.set_aside_to(rec.restore.aside, {"run_id": self.run_id, "covered_by": covered}, now=self.clock())
        self.checkpoints.mark(rec, f"{label}.aside")
        data.put_in_place(rec.restore.extracted)
        self.checkpoints.mark(rec, f"{label}.placed")

    # ============================================================== put back
    def put_back(self, record: MoveRecord, stop_previous: Callable) -> None:
        """The data as it was before the move. ``stop_previous``: stop the previous container if Docker started it
        on its own (a host restart), so no app runs on data being moved."""
        data = self.of(record)
        if not record.started:
            # The new version never ran: what it would have run on is a copy (an extraction, an adopted copy).
            self._undo_restore(record, data)
            self._undo_adopt(record, data)
            return
        plan = record.put_back.data  # type: ignore[union-attr]
        if plan is None:
            plan = record.put_back.data = self._put_back_plan(record, data)  # type: ignore[union-attr]
            self.checkpoints.mark(record, "putback.restore_data")
        if plan.failed_aside is None:
            return  # restore_data_on_failure is off, or there was no snapshot: the data stays as it is
        ready = plan.source is None or not plan.source_is_copy or plan.extracted
        # The source is renamed into place last: once it is whole and gone from where it was, it is the data.
        placed = os.path.isdir(plan.failed_aside) if plan.source is None else ready and not os.path.exists(plan.source)
        if not placed:
            stop_previous()
            if not ready:
                # Extracted before the data moves: a snapshot that cannot be read leaves the data where it is.
                try:
                    data.extract_into(record.snapshot["snapshot"], plan.source)  # type: ignore[index,arg-type]
                except SnapshotError as exc:
                    raise RolloutError(f"{exc}; the tenant stays on the data the failed version ran on") from exc
                plan.extracted = True
                self.checkpoints.mark(record, "putback.restore_data.extracted")
            if os.path.isdir(data.data_dir) and not os.path.isdir(plan.failed_aside):
                data.set_aside_to(plan.failed_aside, {"run_id": self.run_id, "covered_by": None,
                                                      "since": iso(record.started_epoch)}, now=self.clock())  # fmt: skip
        if os.path.isdir(plan.failed_aside) and record.writes_aside is None:
            # Named whoever moved it (this run, or one that died right after the rename): users may have written there.
            count, files = data.writes_since(plan.failed_aside, record.started_epoch or 0, limit=20)
            record.writes_aside = Writes(aside=plan.failed_aside, since=iso(record.started_epoch),
                                         since_epoch=record.started_epoch or 0.0, count=count, files=files)  # fmt: skip
            self.checkpoints.mark(record, "putback.restore_data.aside")
        if not placed and plan.source is not None:
            if os.path.isdir(data.data_dir):
                # Something made a data folder after the data was set aside: never start on it, never delete it.
                raise RolloutError(f"{data.data_dir} appeared after the data was set aside in {plan.failed_aside}: look "
                                   f"at it, move it away, and re-run (the data from before the move is {plan.source})")  # fmt: skip
            data.put_in_place(plan.source)
            self.checkpoints.mark(record, "putback.restore_data.placed")

    def _put_back_plan(self, record: MoveRecord, data: TenantData) -> DataPutBack:
        """Where the data before the move is, journaled before anything moves."""
        if not self.restore_on_failure:
            return DataPutBack(failed_aside=None, source=None, source_is_copy=False)
        failed = data.new_path("failed", self.clock())
        if record.adopt is not None:
            return DataPutBack(failed_aside=failed, source=record.adopt.aside, source_is_copy=False)
        if record.restore is not None and record.restore.exact and os.path.isdir(record.restore.aside):
            return DataPutBack(failed_aside=failed, source=record.restore.aside, source_is_copy=False)
        if record.snapshot:
            return DataPutBack(
                failed_aside=failed, source=data.new_path("restoring", self.clock()), source_is_copy=True
            )
        return DataPutBack(failed_aside=None, source=None, source_is_copy=False)

    @staticmethod
    def _undo_restore(record: MoveRecord, data: TenantData) -> None:
        restore = record.restore
        if restore is None:
            return
        shutil.rmtree(restore.extracted, ignore_errors=True)  # an extraction not (yet) in place: a copy
        if os.path.isdir(restore.aside):
            if os.path.isdir(data.data_dir):
                shutil.rmtree(data.data_dir)  # the extraction put in place, never run on: a copy of the snapshot
            data.put_in_place(restore.aside)

    @staticmethod
    def _undo_adopt(record: MoveRecord, data: TenantData) -> None:
        adopt = record.adopt
        if adopt is None:
            return
        shutil.rmtree(adopt.copy, ignore_errors=True)  # a copy not (yet) in place; its original is untouched
        if adopt.aside is None or os.path.isdir(adopt.aside):
            # data is the adopted copy (never run on), or the folder that was empty: nothing of its own is lost
            if os.path.isdir(data.data_dir):
                shutil.rmtree(data.data_dir)
            if adopt.aside is not None:
                data.put_in_place(adopt.aside)
