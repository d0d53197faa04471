# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release transaction of one host: bring its tenants to a digest, or put each one back exactly.

Per batch of tenants, each step is written to the tenant's journal *before* it is done::

    create   the new container, under a temporary name (nothing stops yet)
    stop     the running container (kept, renamed: it is the exact previous image and config)
    adopt    (a container started by hand) its data copied into the tenant's data folder; the original untouched
    snapshot the whole data folder
    restore  (rollbacks across a migration) the data from before the upgrade; the current data set aside
    swap     names: the old container becomes <name>.pinned-prev, the new one <name>
    start    the new container (from here the new version may have changed the data)
    verify   health gate (fails fast), the nginx site switched to it, smoke checks through nginx
    commit   the old container removed, env files written, snapshots rotated (the rollback point kept)

A failure puts the batch back: each put-back step runs even when an earlier one failed, and the result
says per tenant where it stands. A re-run after a crash reads the journal first: an interrupted commit
is finished, anything else is put back, then the run goes on as planned.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import time
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._engine import container_config
from ansible_collections.pinned.release.plugins.module_utils._http import request
from ansible_collections.pinned.release.plugins.module_utils._journal import Journal
from ansible_collections.pinned.release.plugins.module_utils._nginx import Nginx, NginxError, render_site, site_file
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import (
    NEXT_SUFFIX,
    PREV_SUFFIX,
    Move,
    RolloutError,
    Settings,
    SimulatedCrash,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_plan import PlanMixin
from ansible_collections.pinned.release.plugins.module_utils._rollout_ready import ReadinessMixin
from ansible_collections.pinned.release.plugins.module_utils._rollout_report import ReportMixin
from ansible_collections.pinned.release.plugins.module_utils._rollout_undo import UndoMixin
from ansible_collections.pinned.release.plugins.module_utils._snapshots import TenantData
from ansible_collections.pinned.release.plugins.module_utils._tenants import MANAGED_LABEL


def copy_tree(source: str, destination: str) -> None:
    """A copy of ``source`` with modes, times and owners (the app may run as another user)."""
    shutil.copytree(source, destination, symlinks=True)
    for folder, dirs, files in os.walk(source):
        for name in [".", *dirs, *files]:
            original = os.path.normpath(os.path.join(folder, name))
            stat = os.lstat(original)
            with contextlib.suppress(PermissionError):
                os.lchown(os.path.join(destination, os.path.relpath(original, source)), stat.st_uid, stat.st_gid)


class Rollout(PlanMixin, ReadinessMixin, UndoMixin, ReportMixin):
    """One host's release transaction (the lock is taken by the caller)."""

    def __init__(self, engine, specs: list, app: dict, settings: Settings, run: dict, journal: Journal,
                 nginx: Optional[Nginx], send: Callable = request, audit: Callable = lambda record: None,
                 clock: Callable = time.time, sleep: Callable = time.sleep,
                 failpoint: Optional[Callable] = None, mask: Callable = lambda text: text) -> None:  # fmt: skip
        self.engine = engine
        self.specs = specs
        self.app = app
        self.settings = settings
        self.run = run
        self.journal = journal
        self.nginx = nginx if settings.nginx_enabled else None
        self.send = send
        self.audit_sink = audit
        self.clock = clock
        self.sleep = sleep
        self.failpoint = failpoint
        self.mask = mask
        self.results: dict = {}
        self.changed = False
        self.warnings: list = []
        self.nginx_changes: list = []
        self._expected_versions: dict = {}

    # ================================================================== the run
    def execute(self) -> dict:
        """Recover what a dead run left, then bring every tenant to its spec. Returns the result."""
        recovered = self.recover()
        if not self.specs and self.engine.containers_with_label(MANAGED_LABEL):
            raise RolloutError(
                f"this host declares no tenants but runs {len(self.engine.containers_with_label(MANAGED_LABEL))} "
                "managed container(s): refusing to touch them. Check release_tenants for this host (empty, or "
                "misspelled?)"
            )
        for spec in self.specs:
            for key in ("tls_cert", "tls_key"):
                if spec.get(key) and self.nginx is not None and not os.path.isfile(spec[key]):
                    raise RolloutError(
                        f"tenant {spec['name']}: {key} {spec[key]} is not a file on this host: nothing was changed"
                    )
        plan = {spec["name"]: self.tenant_state(spec) for spec in self.specs}
        refusals = self.foreign_data_problems(plan)
        if refusals:
            raise RolloutError("; ".join(refusals) + ". Nothing was changed")
        pending = [spec for spec in self.specs if plan[spec["name"]]["action"] != "none"]
        restores = self._restore_plan(pending)
        self._prepare_dirs()
        if pending:
            self._pull_first(pending)
            adoptions = {spec["name"]: self.adopted_data(spec, plan[spec["name"]]["facts"]) for spec in pending}
            self._check_space(pending, restores, adoptions)
        self._image_versions()
        self._apply_sites(exclude={s["name"] for s in pending})
        for spec in self.specs:
            if spec["name"] not in {s["name"] for s in pending}:
                self._write_config_files(spec)
                self.results[spec["name"]] = self._entry(spec, "unchanged", plan[spec["name"]]["facts"])
        self._remove_undeclared()
        failed_at = None
        for index in range(0, len(pending), self.settings.batch_size):
            batch = pending[index : index + self.settings.batch_size]
            if failed_at is not None:
                for spec in batch:
                    self.results[spec["name"]] = self._entry(spec, "not_attempted", plan[spec["name"]]["facts"])
                continue
            moves = [self._new_move(spec, plan[spec["name"]]["facts"], restores.get(spec["name"])) for spec in batch]
            if not self._move_batch(moves):
                failed_at = index
        return self._result(recovered)

    def _prepare_dirs(self) -> None:
        for spec in self.specs:
            for path in (spec["dir"], spec["data_dir"], spec["snapshot_dir"]):
                if not os.path.isdir(path):
                    os.makedirs(path, mode=0o750, exist_ok=True)
                    self.changed = True
            TenantData(spec["name"], spec["dir"], self.settings.snapshot_exclude).clean_temporaries()

    # ================================================================== one batch
    def _new_move(self, spec: dict, facts: Optional[dict], restore: Optional[dict]) -> Move:
        previous = None
        previous_name = facts["name"] if facts is not None else spec["container"]
        if facts is not None:
            previous = {
                "id": facts["id"],
                "image": facts["image"],
                "image_id": facts.get("image_id"),
                "digest": facts.get("digest"),
                "running": facts["status"] in ("running", "restarting"),
            }
        record = {
            "run_id": self.run["run_id"],
            "tenant": spec["name"],
            "container": spec["container"],
            "step": "planned",
            "attempt": 1,
            "target": {"image": spec["image"], "digest": spec["digest"]},
            "previous": previous,
            "next": {"name": spec["container"] + NEXT_SUFFIX, "id": None},
            "previous_name": previous_name,
            "prev_name": previous_name + PREV_SUFFIX,
            "adopt_data": self.adopted_data(spec, facts),
            "snapshot": None,
            "restore": None,
            "started": False,
            "site_switched": False,
            "previous_site": None,
            "previous_files": {},
            "reason": self.run.get("reason"),
            "tenant_dir": spec["dir"],
        }
        move = Move(spec=spec, record=record, data=TenantData(spec["name"], spec["dir"], self.settings.snapshot_exclude),
                    restore_meta=restore)  # fmt: skip
        if self.nginx is not None:
            move.site = render_site(spec, self.app, self.settings.nginx_http_port, self.settings.nginx_https_port)
        return move

    def _step(self, move: Move, step: str) -> None:
        """Journal the step about to be done (atomically), then let a test's failpoint 'crash' the process."""
        move.record["step"] = step
        self.journal.save(move.record)
        self._crashpoint(step, move.spec["name"])

    def _crashpoint(self, step: str, tenant: str) -> None:
        if self.failpoint is not None:
            self.failpoint(step, tenant)

    def _move_batch(self, moves: list) -> bool:
        """Move a batch to its target; on any failure put the whole batch back. True when all committed."""
        started = self.clock()
        for move in moves:
            move.timings["begin"] = started
        # The tenants of a batch go through each step side by side; a failure of one fails the step for the batch.
        try:
            self._parallel(self._create, moves)
            self._parallel(self._stop, moves)
            self._parallel(self._adopt_data, [m for m in moves if m.record.get("adopt_data")])
            self._parallel(self._snapshot, moves)
            self._parallel(self._restore_requested, [m for m in moves if m.restore_meta])
            self._parallel(self._swap, moves)
            self._parallel(self._start, moves)
            self._verify(moves)
        except Exception as exc:  # whatever failed, the batch is put back
            if not isinstance(exc, RolloutError):
                exc = RolloutError(f"unexpected error: {self.mask(str(exc))}")
            failed = [m for m in moves if m.failure] or moves
            for move in moves:
                if not move.failure:
                    move.failure = (
                        str(exc) if move in failed else f"put back with its batch ({failed[0].spec['name']} failed)"
                    )
            self._parallel(self._put_back, moves)
            return False
        self._parallel(self._commit, moves)
        return True

    def _parallel(self, function: Callable, moves: list) -> None:
        """``function(move)`` for each move side by side; the first error is raised once all are done."""
        if len(moves) <= 1:
            for move in moves:
                function(move)
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(moves), 8)) as pool:
            futures = [pool.submit(function, m) for m in moves]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]

    def _restore_requested(self, move: Move) -> None:
        self._restore(move, move.restore_meta, exact=True)

    def _fail(self, move: Move, why: str) -> None:
        move.failure = why
        raise RolloutError(f"{move.spec['name']}: {why}")

    def _create(self, move: Move) -> None:
        self._step(move, "create")
        rec = move.record
        with contextlib.suppress(Exception):
            self.engine.remove(rec["next"]["name"])  # a leftover of an earlier crash
        try:
            rec["next"]["id"] = self.engine.create(container_config(move.spec, rec["next"]["name"]))
        except Exception as exc:
            self._fail(move, f"creating its container failed: {exc}")
        previous_site = None
        if self.nginx is not None:
            previous_site = self.nginx.current().get(site_file(move.spec["name"]))
        rec["previous_site"] = previous_site
        for label, path in (("app.env", move.spec["env_file"]), ("secrets.env", move.spec["secrets_file"])):
            old = None
            with contextlib.suppress(FileNotFoundError, NotADirectoryError), open(path, encoding="utf-8") as handle:
                old = handle.read()
            rec["previous_files"][path] = self.journal.keep_copy(move.spec["name"], f"previous-{label}", old)
        self.journal.save(rec)

    def _stop(self, move: Move) -> None:
        self._step(move, "stop")
        previous = move.record["previous"]
        move.timings["stop"] = self.clock()
        if previous and previous["running"]:
            try:
                self.engine.stop(previous["id"], move.spec["stop_timeout"])
            except Exception as exc:
                self._fail(move, f"stopping {move.spec['container']} failed: {exc}")
        self.changed = True

    def _adopt_data(self, move: Move) -> None:
        """Copy a hand-started container's data (it is stopped) into the tenant's data folder; the original is
        never touched, so putting the old container back needs nothing from here."""
        self._step(move, "adopt")
        source, data = move.record["adopt_data"], move.data
        if not os.path.isdir(source):
            self._fail(move, f"its data {source} (adopt_from.data) is not a folder on this host")
        copy = data.data_dir + ".adopting"
        try:
            shutil.rmtree(copy, ignore_errors=True)
            copy_tree(source, copy)
            if os.path.isdir(data.data_dir) and os.listdir(data.data_dir):
                move.record["adopt_aside"] = data.set_aside("replaced", {"run_id": self.run["run_id"], "covered_by": None},
                                                            now=self.clock())  # fmt: skip
            elif os.path.isdir(data.data_dir):
                os.rmdir(data.data_dir)
            data.put_in_place(copy)
        except OSError as exc:
            shutil.rmtree(copy, ignore_errors=True)  # a partial copy (a full disk) would only take space
            self._fail(move, f"copying its data from {source} failed: {exc}")
        self.journal.save(move.record)

    def _snapshot(self, move: Move) -> None:
        self._step(move, "snapshot")
        previous = move.record["previous"] or {}
        begin = self.clock()
        try:
            meta = move.data.take({
                "from_image": previous.get("image"),
                "from_digest": previous.get("digest"),
                "to_image": move.spec["image"],
                "to_digest": move.spec["digest"],
                "run_id": self.run["run_id"],
                "reason": self.run.get("reason"),
            }, now=self.clock())  # fmt: skip
        except OSError as exc:
            self._fail(move, str(exc))
        move.record["snapshot"] = meta
        move.timings["snapshot_s"] = round(self.clock() - begin, 3)
        self.journal.save(move.record)

    def _restore(self, move: Move, meta: dict, exact: bool) -> None:
        """Put the data from ``meta`` (a snapshot) in place; the current data is set aside, never deleted."""
        self._step(move, "restore")
        rec = move.record
        rec["restore"] = {"snapshot": meta["snapshot"], "taken_epoch": meta.get("taken_epoch"), "aside": None,
                          "aside_exact": exact, "extracted": None, "placed": False}  # fmt: skip
        self.journal.save(rec)
        try:
            extracted = move.data.extract(meta["snapshot"], now=self.clock())
            rec["restore"]["extracted"] = extracted
            self.journal.save(rec)
            covered = rec["snapshot"]["snapshot"] if exact and rec.get("snapshot") else None
            rec["restore"]["aside"] = move.data.set_aside("replaced", {"run_id": self.run["run_id"], "covered_by": covered},
                                                          now=self.clock())  # fmt: skip
            self.journal.save(rec)
            move.data.put_in_place(extracted)
            rec["restore"]["placed"] = True
            self.journal.save(rec)
        except OSError as exc:
            self._fail(move, f"restoring its data from {meta['snapshot']} failed: {exc}")

    def _swap(self, move: Move) -> None:
        self._step(move, "swap")
        rec = move.record
        try:
            if rec["previous"]:
                self.engine.rename(rec["previous"]["id"], rec["prev_name"])
            self.engine.rename(rec["next"]["id"], move.spec["container"])
        except Exception as exc:
            self._fail(move, f"renaming containers failed: {exc}")

    def _start(self, move: Move) -> None:
        move.record["started"] = True
        self._step(move, "start")
        try:
            self.engine.start(move.record["next"]["id"])
        except Exception as exc:
            self._fail(move, f"starting the new container failed: {exc}")
        move.timings["started"] = move.timings["first_started"] = self.clock()

    def _verify(self, moves: list) -> None:
        for move in moves:
            self._step(move, "verify")
        failures = self._wait_moves(moves)
        if failures and self.settings.data_mode == "auto":
            retry = [m for m in moves if m.spec["name"] in failures and self._can_retry_on_restored_data(m)]
            for move in retry:
                move.timings["first_attempt_failed"] = self.clock()
            self._parallel(self._retry_on_restored_data, retry)
            if retry:
                for move in retry:
                    failures.pop(move.spec["name"], None)
                failures.update(self._wait_moves(retry))
        if failures:
            failed = [m for m in moves if m.spec["name"] in failures]
            for move in failed:
                move.failure = failures[move.spec["name"]]
            self._parallel(self._keep_logs, failed)
            first = next(iter(failures))
            raise RolloutError(f"{first}: {failures[first]}")
        # Every site of the batch switches in one nginx change (one check, one reload).
        switching = [m for m in moves if m.site is not None and m.record["previous_site"] != m.site]
        for move in switching:
            move.record["site_switched"] = True
            self.journal.save(move.record)
        if switching:
            try:
                self.nginx_changes += self.nginx.apply({site_file(m.spec["name"]): m.site for m in switching})
            except NginxError as exc:
                for move in switching:
                    move.failure = f"nginx: {exc}"
                raise RolloutError(f"nginx: {exc}") from exc
        self._parallel(self._smoke, moves)

    def _smoke(self, move: Move) -> None:
        begin = self.clock()
        outcomes = self.smoke_checks(move.spec)
        move.timings["checks_s"] = round(self.clock() - begin, 3)
        failed = [o for o in outcomes if not o["passed"]]
        if failed:
            self._fail(move, "smoke checks failed: " + "; ".join(f"{o['name']}: {o['detail']}" for o in failed))

    def _can_retry_on_restored_data(self, move: Move) -> bool:
        if move.record["restore"] is not None:
            return False
        move.restore_meta = move.data.rollback_snapshot(move.spec["digest"])
        return move.restore_meta is not None

    def _retry_on_restored_data(self, move: Move) -> None:
        """auto: the target refused the current data; restore the data from before it was left, start again."""
        rec = move.record
        rec["attempt"] = 2
        self._step(move, "retry")
        try:
            # A container in a crash loop has nothing to stop gracefully (and docker stop would wait out its timeout).
            self.engine.remove(rec["next"]["id"])
            rec["next"]["id"] = None
            self.journal.save(rec)
        except Exception as exc:
            self._fail(move, f"removing the container that failed on the current data failed: {exc}")
        self._restore(move, move.restore_meta, exact=False)
        try:
            rec["next"]["id"] = self.engine.create(container_config(move.spec, move.spec["container"]))
        except Exception as exc:
            self._fail(move, f"creating its container again failed: {exc}")
        self.journal.save(rec)
        rec["started"] = True
        self._step(move, "start")
        try:
            self.engine.start(rec["next"]["id"])
        except Exception as exc:
            self._fail(move, f"starting again on the restored data failed: {exc}")
        move.timings["started"] = self.clock()

    # ================================================================== commit (the put-back is in _rollout_undo)
    def _commit(self, move: Move) -> None:
        self._step(move, "commit")
        self.finish_commit(move.record, move.spec)
        move.timings["end"] = self.clock()
        entry = self._entry(move.spec, "created" if move.record["previous"] is None else "replaced", None, move)
        self.results[move.spec["name"]] = entry
        self._audit(self._audit_record(move.record, "ok", entry))
        self.journal.done(move.spec["name"])
        self.changed = True

    def _put_back(self, move: Move) -> None:
        self.put_back(move.record, move.spec)
        entry = self._entry(move.spec, "put_back", None, move)
        self.results[move.spec["name"]] = entry
        self._audit(self._audit_record(move.record, "failed, put back", entry))


__all__ = ["Rollout", "RolloutError", "Settings", "SimulatedCrash"]
