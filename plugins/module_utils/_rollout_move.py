# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The steps of tenants' moves, a batch at a time: forward as ``_rollout_steps.STEP_TABLE`` orders them, each journaled
before it changes anything, then the commit; or the put-back, with the undo steps the table names for the steps
reached. The run around them (planning, recovery) is ``_rollout``.
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError, container_config
from ansible_collections.pinned.release.plugins.module_utils._format import short_digest
from ansible_collections.pinned.release.plugins.module_utils._fs import write_atomic
from ansible_collections.pinned.release.plugins.module_utils._nginx import NginxError, site_file
from ansible_collections.pinned.release.plugins.module_utils._readiness import Probe, Readiness
from ansible_collections.pinned.release.plugins.module_utils._rollout_containers import Containers
from ansible_collections.pinned.release.plugins.module_utils._rollout_data import DataSteps
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import (
    NEXT_SUFFIX,
    PREV_SUFFIX,
    Move,
    RolloutError,
    Settings,
    SimulatedCrash,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_plan import config_files
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import (
    Checkpoints,
    MoveJournal,
    MoveRecord,
    NewContainer,
    PutBack,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_report import Report
from ansible_collections.pinned.release.plugins.module_utils._rollout_sites import Sites
from ansible_collections.pinned.release.plugins.module_utils._rollout_steps import Step, Undo, undo_plan
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.module_utils._tenants import TENANT_LABEL


class MoveSteps:
    """Moves tenants with the parts of one run: their engine calls, data, sites, readiness and report."""

    def __init__(self, engine, settings: Settings, run: dict, journal: MoveJournal, checkpoints: Checkpoints,
                 containers: Containers, data: DataSteps, sites: Sites, readiness: Readiness, report: Report,
                 expected_version: Callable, clock: Callable, mask: SecretMask) -> None:  # fmt: skip
        self.engine = engine
        self.settings = settings
        self.run = run
        self.journal = journal
        self.checkpoints = checkpoints
        self.containers = containers
        self.data = data
        self.sites = sites
        self.readiness = readiness
        self.report = report
        self.expected_version = expected_version
        self.clock = clock
        self.mask = mask

    def move_batch(self, moves: list) -> bool:
        """Move a batch to its target. True when every move committed."""
        try:
            return self._move_batch(moves)
        finally:
            for move in moves:  # a move whose own report could not be written is still in the result, as failed
                if move.name not in self.report.results:
                    self.report.entry(move.spec, "failed", move=move, failure=move.failure or "its move ended without "
                                      "a result: see the host's audit log and journal (docs/recovery.md)")  # fmt: skip

    def _move_batch(self, moves: list) -> bool:
        for move in moves:
            move.timings["begin"] = self.clock()
        active = list(moves)
        for step in (self._create, self._stop, self._adopt, self._snapshot, self._restore, self._swap, self._start,
                     self.verify):  # fmt: skip
            if step == self.verify:
                try:
                    step(active)  # the batch together: one wait, one nginx change
                except Exception as exc:  # an engine or file error here fails the batch's moves, never the run
                    for move in active:
                        move.failure = move.failure or f"verifying it failed: {self.mask.text(str(exc))}"
            else:
                self.each(step, active)
            failed = [m for m in active if m.failure]
            if not failed:
                continue
            if self.settings.failure_scope == "batch":
                for move in active:
                    move.failure = move.failure or f"put back with its batch ({failed[0].name} failed)"
                self.each(self._put_back_move, active)
                return False
            self.each(self._put_back_move, failed)
            active = [m for m in active if not m.failure]
        self.each(self.commit, active)
        return len(active) == len(moves)

    def each(self, function: Callable, moves: list) -> None:
        """``function(move)`` for each move side by side; an error fails that move (its ``failure``), not the others."""

        step = function.__name__.strip("_")

        def guarded(move: Move) -> None:
            begin = self.clock()
            try:
                function(move)
            except Exception as exc:  # every engine, file or nginx error is this tenant's failure, said in one line
                move.failure = move.failure or (str(exc) if isinstance(exc, (RolloutError, EngineCallError))
                                                else f"unexpected error: {self.mask.text(str(exc))}")  # fmt: skip
            finally:
                move.timings[f"{step}_s"] = round(self.clock() - begin, 3)  # where the seconds go (make bench)

        if len(moves) <= 1:
            for move in moves:
                guarded(move)
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(moves), 8)) as pool:
            futures = [pool.submit(guarded, m) for m in moves]
        crashes = [f.exception() for f in futures if isinstance(f.exception(), SimulatedCrash)]
        if crashes:
            raise crashes[0]

    # ------------------------------------------------------------------ the forward steps
    def _create(self, move: Move) -> None:
        rec = move.record
        rec.previous_site = self.sites.site_of(move.name)
        self.checkpoints.enter(rec, Step.CREATE)
        try:
            self.containers.remove(rec.new.name)  # a leftover of an earlier crash
            rec.new.id = self.containers.create(container_config(move.spec, rec.new.name))
        except EngineCallError as exc:
            raise RolloutError(f"creating its container failed: {exc}") from exc
        self.checkpoints.mark(rec, "create.created")

    def _stop(self, move: Move) -> None:
        rec = move.record
        self.checkpoints.enter(rec, Step.STOP)
        move.timings["stop"] = self.clock()
        if rec.previous and rec.previous.running:
            try:
                self.containers.stop(rec.previous.id, move.spec["stop_timeout"])
            except EngineCallError as exc:
                raise RolloutError(f"stopping {rec.previous.name} failed: {exc}") from exc
        self.report.changed = True

    def _adopt(self, move: Move) -> None:
        if move.adopt_source:
            self.data.adopt(move, move.adopt_source)

    def _snapshot(self, move: Move) -> None:
        previous = move.record.previous
        self.data.snapshot(move, {
            "from_image": previous.image if previous else None,
            "from_digest": previous.digest if previous else None,
            "to_image": move.spec["image"],
            "to_digest": move.spec["digest"],
            "run_id": self.run["run_id"],
            "reason": self.run.get("reason"),
        })  # fmt: skip

    def _restore(self, move: Move) -> None:
        if move.restore_meta:
            self.data.restore(move, move.restore_meta, exact=True, step=Step.RESTORE)

    def _swap(self, move: Move) -> None:
        rec = move.record
        self.checkpoints.enter(rec, Step.SWAP)
        try:
            if rec.previous:
                self.containers.rename(rec.previous.id, rec.previous.name + PREV_SUFFIX)
            self.containers.rename(rec.new.id, rec.container)
        except EngineCallError as exc:
            raise RolloutError(f"renaming containers failed: {exc}") from exc

    def _start(self, move: Move) -> None:
        rec = move.record
        rec.started, rec.started_epoch = True, self.clock()
        self.checkpoints.enter(rec, Step.START)
        try:
            self.containers.start(rec.new.id, rec.port, own=(rec.new.id,))
        except EngineCallError as exc:
            raise RolloutError(f"starting the new container failed: {exc}") from exc
        move.timings["started"] = move.timings["first_started"] = self.clock()

    def _probe(self, move: Move) -> Probe:
        # A new container has never restarted: any restart seen is a crash loop.
        return Probe(move.name, move.record.new.id or move.record.container, move.record.port,
                     self.expected_version(move.record.target_image), restarts=0)  # fmt: skip

    def _wait(self, moves: list) -> dict:
        probes = [self._probe(m) for m in moves]
        failures = self.readiness.wait(probes, self.settings.health_timeout)
        for move, probe in zip(moves, probes):
            if probe.ready_at is not None:
                move.timings["ready"] = probe.ready_at
        return failures

    def verify(self, moves: list) -> None:
        """Health gate, then the batch's sites switched in one nginx change, then the smoke checks."""
        for move in moves:
            self.checkpoints.enter(move.record, Step.VERIFY)
        failures = self._wait(moves) if moves else {}
        retry = [m for m in moves if m.name in failures and m.retry_meta and m.record.restore is None]
        if retry:
            for move in retry:
                move.timings["first_attempt_failed"] = self.clock()
                del failures[move.name]
            self.each(self._retry, retry)
            retried = [m for m in retry if not m.failure]
            failures.update(self._wait(retried) if retried else {})
        for move in moves:
            if move.name in failures:
                move.failure = failures[move.name]
                move.logs = self._logs(move.record.new.id or move.record.container)
        passing = [m for m in moves if not m.failure]
        if len(passing) < len(moves) and self.settings.failure_scope == "batch":
            return
        switching = [m for m in passing if m.site is not None and m.record.previous_site != m.site]
        for move in switching:
            move.record.site_switched = True
            self.checkpoints.mark(move.record, "verify.site")
        if switching:
            begin = self.clock()
            try:
                self.sites.apply({site_file(m.name): m.site for m in switching})
            except NginxError as exc:
                for move in switching:
                    move.failure = f"nginx: {exc}"
            for move in switching:
                move.timings["site_s"] = round(self.clock() - begin, 3)
        self.each(self._checks, [m for m in passing if not m.failure])

    def _checks(self, move: Move) -> None:
        rec = move.record
        outcomes = self.readiness.smoke(self.settings.smoke_checks, rec.port, rec.domain, rec.tls, self.sites.ports)
        failed = [o for o in outcomes if not o["passed"]]
        if failed:
            raise RolloutError("smoke checks failed: " + "; ".join(f"{o['name']}: {o['detail']}" for o in failed))

    def _retry(self, move: Move) -> None:
        """data_mode auto: the target refused the current data; restore the data from before it was left, start again."""
        rec, spec = move.record, move.spec
        rec.attempt = 2
        self.checkpoints.enter(rec, Step.RETRY)
        try:
            # A container in a crash loop has nothing to stop gracefully (docker stop would wait out its timeout).
            self.containers.remove(rec.new.id or rec.container)
            rec.new = NewContainer(name=spec["container"] + NEXT_SUFFIX)
            self.checkpoints.mark(rec, "retry.removed")
            self.data.restore(move, move.retry_meta, exact=False, step=Step.RETRY)
            rec.new.id = self.containers.create(container_config(spec, rec.new.name))
            self.checkpoints.mark(rec, "retry.created")
            self.containers.rename(rec.new.id, rec.container)
            self.checkpoints.mark(rec, "retry.renamed")
            self.containers.start(rec.new.id, rec.port, own=(rec.new.id,))
        except EngineCallError as exc:
            raise RolloutError(f"starting again on the restored data failed: {exc}") from exc
        move.timings["started"] = self.clock()

    def _logs(self, container: str) -> list:
        """The failed container's last log lines (without a line holding a secret), for the result."""
        return self.mask.lines(self.engine.logs(container, self.settings.log_lines * 3), self.settings.log_lines)

    # ------------------------------------------------------------------ commit
    def commit(self, move: Move, audit_result: str = "ok", declared: bool = True) -> None:
        """The move is kept: whatever of its end fails (the journal write included) is a warning; a re-run, which
        finds the new version ready, finishes it. ``declared``: the tenant is still declared (its files are written)."""
        rec = move.record
        begin = self.clock()
        problems = []
        try:
            for part in (lambda: self.checkpoints.enter(rec, Step.COMMIT),
                         lambda: self.finish_commit(rec, move.spec if declared else None)):  # fmt: skip
                try:
                    part()
                except (EngineCallError, OSError) as exc:  # each part runs: a journal that cannot be written included
                    problems.append(str(exc))
            if problems:
                self.report.warnings.append(f"{rec.tenant}: runs {short_digest(rec.target_image)}, but "
                                            f"finishing its commit failed ({'; '.join(problems)}): the next run "
                                            "finishes it")  # fmt: skip
            else:
                self.journal.done(rec.tenant)
        finally:
            move.timings["end"] = self.clock()
            move.timings["commit_s"] = round(move.timings["end"] - begin, 3)
            entry = self.report.entry(move.spec, "created" if rec.previous is None else "replaced", move=move)
            self.report.audit(rec.tenant, audit_result, rec, entry)
            self.report.changed = True

    def finish_commit(self, rec: MoveRecord, spec: Optional[dict]) -> None:
        """The idempotent end of a move (also run by recovery): restart policy set, old container gone, files
        written, snapshots rotated (the rollback points kept), set-aside folders bounded."""
        self.containers.set_restart_policy(rec.new.id or rec.container, rec.restart_policy)
        if rec.previous:
            self.containers.remove(rec.previous.id)
        if rec.adopt:
            self.report.warnings.append(f"{rec.tenant}: adopted from {rec.previous.name if rec.previous else '?'}, whose "
                                        f"data stays where it was ({rec.adopt.source}): remove it by hand once you no "
                                        "longer need it")  # fmt: skip
        if spec is not None:
            self.write_config_files(spec)
        data = self.data.of(rec)
        keep = (rec.snapshot["snapshot"],) if rec.snapshot else ()
        protect = tuple(d for d in (rec.target_digest, *self.settings.protect_digests) if d)
        data.rotate(self.settings.snapshot_keep, protect, keep)
        _gone, only_copies = data.bound_asides(self.settings.aside_keep)
        if only_copies:
            self.report.warnings.append(
                f"{rec.tenant}: {len(only_copies)} set-aside data folder(s) hold writes found nowhere else "
                f"({', '.join(os.path.basename(a['path']) for a in only_copies)}): look at them and delete them by hand "
                "(docs/recovery.md)"
            )

    # ------------------------------------------------------------------ put back
    def _put_back_move(self, move: Move) -> None:
        try:
            self.put_back(move.record)
        finally:
            self.report.entry(move.spec, "put_back", move=move)
            self.report.audit(move.name, "failed, put back", move.record, self.report.results[move.name])

    def _journaled(self, rec: MoveRecord, write: Callable) -> None:
        """A journal write during a put-back: one that fails (a full disk) is an error of the put-back, which goes on -
        each undo step is judged from the containers and folders themselves when it runs again."""
        try:
            write()
        except OSError as exc:
            rec.put_back.errors.append(f"journal: {exc}")  # type: ignore[union-attr]

    def put_back(self, rec: MoveRecord) -> bool:
        """Undo a move, every undo step even when an earlier one (or a journal write) failed. True when the tenant is
        back and ready. Its journal ends once every undo step is done, whatever the previous container's health."""
        rec.put_back = rec.put_back or PutBack(done=[], errors=[])
        rec.put_back.errors = []
        self._journaled(rec, lambda: self.checkpoints.enter(rec, Step.PUT_BACK))
        undo = {Undo.REMOVE_NEW: self.remove_new, Undo.RESTORE_DATA: self._restore_data,
                Undo.RESTORE_SITE: self._restore_site, Undo.RENAME_PREVIOUS: self._rename_previous,
                Undo.START_PREVIOUS: self._start_previous}  # fmt: skip
        for step in undo_plan(rec.reached):
            if step.value in rec.put_back.done:
                continue
            try:
                undo[step](rec)
                rec.put_back.done.append(step.value)
            except Exception as exc:  # every put-back step runs; what failed is reported
                rec.put_back.errors.append(f"{step.value}: {self.mask.text(str(exc))}")
            self._journaled(rec, lambda label=f"putback.{step.value}": self.checkpoints.mark(rec, label))
        try:
            rec.standing, healthy = self._standing(rec)
        except Exception as exc:  # looking at it failed: say so, the put-back itself is what it is
            rec.standing, healthy = (
                f"unknown: looking at its container failed ({self.mask.text(str(exc))}); re-run",
                False,
            )
        self._journaled(rec, lambda: self.checkpoints.mark(rec, "putback.standing"))
        # A put-back step that failed (or a journal write) is tried again by the next run, which finds the journal.
        if not rec.put_back.errors:
            self._journaled(rec, lambda: self.journal.done(rec.tenant))
        return healthy

    def remove_new(self, rec: MoveRecord) -> None:
        if rec.new.id:
            self.containers.remove(rec.new.id)
        self.containers.remove(rec.new.name)  # created although its id was never journaled
        if Step.SWAP.value in rec.reached or Step.RETRY.value in rec.reached:
            holder = self.engine.container(rec.container)
            ours = holder is not None and (holder.get("labels") or {}).get(TENANT_LABEL) == rec.tenant
            if ours and (rec.previous is None or holder["id"] != rec.previous.id):
                self.containers.remove(holder["id"])

    def _restore_data(self, rec: MoveRecord) -> None:
        def stop_previous() -> None:
            facts = self.engine.container(rec.previous.id) if rec.previous else None
            if facts is not None and facts["status"] in ("running", "restarting"):
                self.containers.stop(rec.previous.id, 30)  # type: ignore[union-attr]

        self.data.put_back(rec, stop_previous)

    def _restore_site(self, rec: MoveRecord) -> None:
        if rec.site_switched:
            self.sites.apply({site_file(rec.tenant): rec.previous_site})

    def _rename_previous(self, rec: MoveRecord) -> None:
        if not rec.previous or self.engine.container(rec.previous.id) is None:
            return  # removed by hand while the move was dead: nothing to rename (the standing says so)
        holder = self.engine.container(rec.previous.name)
        if holder is not None and holder["id"] != rec.previous.id:
            raise RolloutError(f"{rec.previous.name} is taken by another container ({holder['id'][:12]}); the previous "
                               f"one is {rec.previous.name + PREV_SUFFIX}")  # fmt: skip
        if holder is None:
            self.containers.rename(rec.previous.id, rec.previous.name)

    def _start_previous(self, rec: MoveRecord) -> None:
        if not (rec.previous and rec.previous.running):
            return
        facts = self.engine.container(rec.previous.id)
        if facts is None:
            return  # removed by hand while the move was dead: nothing to start (the standing says so)
        if facts["status"] != "running":
            self.containers.start(rec.previous.id, _host_port(facts) or rec.port, own=(rec.previous.id,))

    def _standing(self, rec: MoveRecord) -> tuple:
        """(where the tenant stands, in words, whether it is back and ready)."""
        previous = rec.previous
        if not previous:
            return "not running (a new tenant: nothing ran before; fix the cause and re-run)", False
        if not previous.running:
            return f"stopped, as it was before, on {previous.image}", False
        try:
            facts = self.engine.container(previous.id)
        except EngineCallError as exc:
            return f"unknown: inspecting its container failed ({exc}); re-run the deploy", False
        errors = rec.put_back.errors if rec.put_back else []
        if facts is None and not errors:
            return (f"DOWN: its previous container {previous.name} is gone (removed by hand?); its data is back as it "
                    "was: re-run the deploy, which creates the tenant from its declaration"), False  # fmt: skip
        if facts is None or facts["status"] not in ("running", "restarting"):
            why = "; ".join(errors) or ("its container is gone" if facts is None else f"it is {facts['status']}")
            return (f"DOWN: no running container ({why}). To fix: docker start {previous.name}, or re-run the deploy "
                    "(it recovers from the journal); docs/recovery.md"), False  # fmt: skip
        probe = Probe(rec.tenant, previous.id, _host_port(facts) or 0)
        failures = self.readiness.wait([probe], self.settings.health_timeout)
        if not failures and errors:
            return (f"previous image {previous.image} healthy, but the put-back is not finished ({'; '.join(errors)}): "
                    "the next run finishes it"), True  # fmt: skip
        if not failures:
            return f"previous image {previous.image} healthy", True
        return (f"previous image {previous.image} running but NOT ready ({failures[rec.tenant]}); "
                f"docker logs {previous.name}"), False  # fmt: skip

    # ================================================================== recovery
    def write_config_files(self, spec: dict) -> None:
        for path, (old, new) in config_files(spec).items():
            if old != new:
                write_atomic(path, new, 0o600 if path == spec["secrets_file"] else 0o640)
                self.report.changed = True


def _host_port(facts: dict) -> Optional[int]:
    for published in facts.get("published_ports") or []:
        parts = published.split(":")
        if len(parts) >= 3 and parts[-2].isdigit():
            return int(parts[-2])
    return None
