# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release transaction of one host: bring its tenants to a digest, or put each one back exactly.

Each tenant's move walks the steps of ``_rollout_steps.STEP_TABLE`` (create, stop, adopt, snapshot, restore, swap,
start, verify, retry, commit), its typed journal record (``_rollout_record``) written before each step changes
anything. A failure puts the move back with the undo steps the table names for the steps reached, each running
even when an earlier one failed. A re-run first recovers what a dead run left, as the table says for the step the
journal names: a new version that may have served users is judged now - ready and passing its checks, it is kept
with the writes made on it; otherwise it is put back and those writes are set aside and named.

This class drives; the parts do: ``Containers`` (engine calls), ``DataSteps`` (snapshot, restore, put-back of
data), ``Sites`` (nginx), ``Readiness`` (when a container is ready), ``Report`` (results and audit), ``Planner``
(the read-only look before anything changes).
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError, container_config
from ansible_collections.pinned.release.plugins.module_utils._http import request
from ansible_collections.pinned.release.plugins.module_utils._journal import write_atomic
from ansible_collections.pinned.release.plugins.module_utils._nginx import Nginx, NginxError, site_file
from ansible_collections.pinned.release.plugins.module_utils._readiness import AppHealth, Probe, Readiness
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
from ansible_collections.pinned.release.plugins.module_utils._rollout_plan import Planner, adopted_data, config_files
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import (
    SCHEMA,
    Checkpoints,
    MoveJournal,
    MoveRecord,
    NewContainer,
    Previous,
    PutBack,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_report import Report
from ansible_collections.pinned.release.plugins.module_utils._rollout_sites import Sites
from ansible_collections.pinned.release.plugins.module_utils._rollout_steps import (
    Recovery,
    Step,
    Undo,
    rule_for,
    undo_plan,
)
from ansible_collections.pinned.release.plugins.module_utils._snapshots import TenantData
from ansible_collections.pinned.release.plugins.module_utils._tenants import MANAGED_LABEL, TENANT_LABEL


class Rollout:
    """One host's release transaction (the lock is taken by the caller)."""

    def __init__(self, engine, specs: list, app: dict, settings: Settings, run: dict, journal: MoveJournal,
                 nginx: Optional[Nginx], send: Callable = request, audit: Callable = lambda record: None,
                 clock: Callable = time.time, sleep: Callable = time.sleep,
                 failpoint: Optional[Callable] = None, mask: Callable = lambda text: text) -> None:  # fmt: skip
        self.engine = engine
        self.specs = specs
        self.settings = settings
        self.run = run
        self.journal = journal
        self.clock = clock
        self.mask = mask
        self.checkpoints = Checkpoints(journal, failpoint)
        health = AppHealth(
            settings.health_path, dict(settings.health_json), settings.version_path, settings.version_key
        )
        self.readiness = Readiness(engine, health, send=send, clock=clock, sleep=sleep)
        self.sites = Sites(nginx if settings.nginx_enabled else None, app, settings.nginx_http_port,
                           settings.nginx_https_port, settings.nginx_default_server)  # fmt: skip
        self.containers = Containers(engine, sleep)
        self.data = DataSteps(settings.snapshot_exclude, settings.restore_data_on_failure, run["run_id"], clock,
                              self.checkpoints)  # fmt: skip
        self.report = Report(run, clock, audit)
        self.planner = Planner(engine, specs, app, settings, self.readiness, self.sites, journal, self.expected_version)
        self._versions: dict = {}

    def expected_version(self, image: str) -> Optional[str]:
        """The version an image declares in the app's version label (a ready container must report it)."""
        if not self.settings.version_label:
            return None
        if image not in self._versions:
            labels = self.engine.image_labels(image)
            if not labels:
                return None  # not on this host (yet): asked again once pulled
            self._versions[image] = labels.get(self.settings.version_label)
        return self._versions[image]

    def plan(self) -> dict:
        return self.planner.plan()

    def status(self, audit_log: str) -> list:
        return self.planner.status(audit_log)

    # ================================================================== the run
    def execute(self) -> dict:
        """Recover what a dead run left, then bring every tenant to its spec. Returns the result."""
        self.recover()
        self._refuse_what_cannot_start()
        stuck = {
            entry["tenant"]: entry["outcome"] for entry in self.report.recovered if self.journal.load(entry["tenant"])
        }
        plan = {}
        for spec in self.specs:
            if spec["name"] in stuck:  # its journal stays until its recovery finishes: never start another move over it
                self.report.entry(spec, "failed")["failure"] = f"its recovery is not finished ({stuck[spec['name']]})"
                continue
            try:
                plan[spec["name"]] = self.planner.tenant_state(spec)
            except EngineCallError as exc:
                self.report.entry(spec, "failed")["failure"] = f"looking at its container failed: {exc}"
        refusals = self.planner.foreign_data_problems(plan) + self._missing_data(plan)
        if refusals:
            raise RolloutError("; ".join(refusals) + ". Nothing was changed")
        pending = [s for s in self.specs if s["name"] in plan and
                   (plan[s["name"]]["action"] != "none" or s["name"] in self.settings.restore_snapshots)]  # fmt: skip
        current = {name: (state["facts"] or {}).get("digest") for name, state in plan.items()}
        restores, retries = self.planner.restore_plan(pending, current)
        self._prepare_dirs()
        if pending:
            self._pull_first(pending)
            adoptions = {s["name"]: adopted_data(s, plan[s["name"]]["facts"]) for s in pending}
            self.planner.check_space(pending, restores, retries, adoptions)
        self._apply_sites_outside({s["name"] for s in pending})
        for spec in self.specs:
            if spec["name"] in plan and spec not in pending:
                self._write_config_files(spec)
                if spec["name"] not in self.report.results:  # a recovery that committed it says more
                    self.report.entry(spec, "unchanged", plan[spec["name"]]["facts"])
        self._remove_undeclared()
        stopped = False
        size = self.settings.batch_size
        for batch in (pending[i : i + size] for i in range(0, len(pending), size)):
            if stopped:
                for spec in batch:
                    self.report.entry(spec, "not_attempted", plan[spec["name"]]["facts"])
                continue
            moves = [self._new_move(s, plan[s["name"]]["facts"], restores.get(s["name"]), retries.get(s["name"]))
                     for s in batch]  # fmt: skip
            if not self._move_batch(moves) and self.settings.failure_scope == "batch":
                stopped = True
        for image in {s["image"] for s in self.specs}:
            self.report.image_versions[image] = self.expected_version(image)
        return self.report.result(self.specs, self.sites.changed)

    def _refuse_what_cannot_start(self) -> None:
        if not self.specs:
            managed = self.engine.containers_with_label(MANAGED_LABEL)
            if managed:
                raise RolloutError(
                    f"this host declares no tenants but runs {len(managed)} managed container(s): refusing to touch "
                    "them. Check release_tenants for this host (empty, or misspelled?)"
                )
        unknown = sorted(set(self.settings.restore_snapshots) - {s["name"] for s in self.specs})
        if unknown:
            raise RolloutError(f"restore_snapshots names {', '.join(unknown)}, which this host does not declare: check "
                               "the tenant names. Nothing was changed")  # fmt: skip
        problems = self.planner.data_problems()
        for spec in self.specs:
            for key in ("tls_cert", "tls_key"):
                if spec.get(key) and self.sites.nginx is not None and not os.path.isfile(spec[key]):
                    problems.append(f"tenant {spec['name']}: {key} {spec[key]} is not a file on this host")
        if problems:
            raise RolloutError("; ".join(problems) + ". Nothing was changed")

    def _missing_data(self, plan: dict) -> list:
        """A tenant whose managed container exists but whose data folder does not: never start it on an empty one."""
        problems = []
        for spec in self.specs:
            facts = (plan.get(spec["name"]) or {}).get("facts")
            managed = facts is not None and MANAGED_LABEL in (facts.get("labels") or {})
            if managed and not os.path.lexists(spec["data_dir"]):
                problems.append(f"tenant {spec['name']}: its data folder {spec['data_dir']} is missing although its "
                                f"container {facts['name']} exists (moved by hand?): look for data.* folders in "
                                f"{spec['dir']}, put the right one back as data, then re-run")  # fmt: skip
        return problems

    def _prepare_dirs(self) -> None:
        for spec in self.specs:
            for path in (spec["dir"], spec["data_dir"], spec["snapshot_dir"]):
                if not os.path.isdir(path):
                    os.makedirs(path, mode=0o750, exist_ok=True)
                    self.report.changed = True
            TenantData(spec["name"], spec["dir"], self.settings.snapshot_exclude).clean_temporaries()

    def _pull_first(self, pending: list) -> None:
        for image in sorted({spec["image"] for spec in pending}):
            try:
                present = self.engine.image_present(image)
                if not present:
                    self.engine.pull(image)
                    present = self.engine.image_present(image)
                    self.report.changed = True
            except EngineCallError as exc:
                raise RolloutError(f"pulling {image} failed before any tenant was touched: {exc}") from exc
            if not present:
                raise RolloutError(f"pulling {image} did not leave that digest on the host; nothing was touched")

    def _apply_sites_outside(self, moving: set) -> None:
        """The common file, removed tenants' sites, and the sites of tenants not moving (a moving tenant keeps its
        site until its new container is ready)."""
        try:
            if self.sites.apply(self.sites.outside(self.specs, moving)):
                self.report.changed = True
        except NginxError as exc:
            raise RolloutError(f"nginx: {exc}. No tenant was touched") from exc

    def _write_config_files(self, spec: dict) -> None:
        for path, (old, new) in config_files(spec).items():
            if old != new:
                write_atomic(path, new, 0o600 if path == spec["secrets_file"] else 0o640)
                self.report.changed = True

    def _remove_undeclared(self) -> None:
        try:
            unexpected = self.planner.unexpected()
        except EngineCallError as exc:
            self.report.warnings.append(f"listing managed containers failed: {exc}")
            return
        if not unexpected:
            return
        if not self.settings.remove_undeclared:
            self.report.warnings.append("managed container(s) no tenant declares are left running: "
                                        + ", ".join(c["name"] for c in unexpected)
                                        + " (remove_undeclared removes them; their data stays)")  # fmt: skip
            return
        for container in unexpected:
            try:
                self.containers.remove(container["id"])
            except EngineCallError as exc:
                self.report.warnings.append(f"removing {container['name']} (not declared) failed: {exc}")
                continue
            self.report.changed = True
            self.report.audit(container["labels"].get(TENANT_LABEL) or container["name"], "removed (not declared)",
                              container=container["name"])  # fmt: skip
            self.report.removed_undeclared.append(container["name"])

    # ================================================================== one batch
    def _new_move(self, spec: dict, facts: Optional[dict], restore: Optional[dict], retry: Optional[dict]) -> Move:
        previous = None
        if facts is not None:
            previous = Previous(id=facts["id"], name=facts["name"], image=facts["image"], image_id=facts.get("image_id"),
                                digest=facts.get("digest"), running=facts["status"] in ("running", "restarting"))  # fmt: skip
        record = MoveRecord(schema=SCHEMA, run_id=self.run["run_id"], tenant=spec["name"], container=spec["container"],
                            tenant_dir=spec["dir"], port=spec["port"], domain=spec["domain"],
                            tls=bool(spec.get("tls_cert")), target_image=spec["image"], target_digest=spec["digest"],
                            restart_policy=spec["restart_policy"], previous=previous,
                            new=NewContainer(name=spec["container"] + NEXT_SUFFIX), reason=self.run.get("reason"))  # fmt: skip
        return Move(spec=spec, record=record, data=TenantData(spec["name"], spec["dir"], self.settings.snapshot_exclude),
                    site=self.sites.render(spec), restore_meta=restore, retry_meta=retry,
                    adopt_source=adopted_data(spec, facts))  # fmt: skip

    def _move_batch(self, moves: list) -> bool:
        """Move a batch to its target. True when every move committed."""
        for move in moves:
            move.timings["begin"] = self.clock()
        active = list(moves)
        for step in (self._create, self._stop, self._adopt, self._snapshot, self._restore, self._swap, self._start,
                     self._verify):  # fmt: skip
            if step == self._verify:
                step(active)  # the batch together: one wait, one nginx change
            else:
                self._each(step, active)
            failed = [m for m in active if m.failure]
            if not failed:
                continue
            if self.settings.failure_scope == "batch":
                for move in active:
                    move.failure = move.failure or f"put back with its batch ({failed[0].name} failed)"
                self._each(self._put_back_move, active)
                return False
            self._each(self._put_back_move, failed)
            active = [m for m in active if not m.failure]
        self._each(self._commit, active)
        return len(active) == len(moves)

    def _each(self, function: Callable, moves: list) -> None:
        """``function(move)`` for each move side by side; an error fails that move (its ``failure``), not the others."""

        def guarded(move: Move) -> None:
            try:
                function(move)
            except Exception as exc:  # every engine, file or nginx error is this tenant's failure, said in one line
                move.failure = move.failure or (str(exc) if isinstance(exc, (RolloutError, EngineCallError))
                                                else f"unexpected error: {self.mask(str(exc))}")  # fmt: skip

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
            begin = self.clock()
            self.data.restore(move, move.restore_meta, exact=True, step=Step.RESTORE)
            move.timings["restore_s"] = round(self.clock() - begin, 3)

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

    def _verify(self, moves: list) -> None:
        """Health gate, then the batch's sites switched in one nginx change, then the smoke checks."""
        for move in moves:
            self.checkpoints.enter(move.record, Step.VERIFY)
        failures = self._wait(moves) if moves else {}
        retry = [m for m in moves if m.name in failures and m.retry_meta and m.record.restore is None]
        if retry:
            for move in retry:
                move.timings["first_attempt_failed"] = self.clock()
                del failures[move.name]
            self._each(self._retry, retry)
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
            try:
                self.sites.apply({site_file(m.name): m.site for m in switching})
            except NginxError as exc:
                for move in switching:
                    move.failure = f"nginx: {exc}"
        self._each(self._smoke, [m for m in passing if not m.failure])

    def _smoke(self, move: Move) -> None:
        begin = self.clock()
        rec = move.record
        outcomes = self.readiness.smoke(self.settings.smoke_checks, rec.port, rec.domain, rec.tls, self.sites.ports)
        move.timings["checks_s"] = round(self.clock() - begin, 3)
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
        raw = self.engine.logs(container, self.settings.log_lines * 3)
        return [line for line in raw.splitlines() if self.mask(line) == line][-self.settings.log_lines :]

    # ------------------------------------------------------------------ commit
    def _commit(self, move: Move, audit_result: str = "ok") -> None:
        rec = move.record
        self.checkpoints.enter(rec, Step.COMMIT)
        try:
            self._finish_commit(rec, move.spec)
            self.journal.done(rec.tenant)
        except (EngineCallError, OSError) as exc:
            self.report.warnings.append(f"{rec.tenant}: runs {rec.target_image.rsplit('@', 1)[-1][:19]}, but finishing "
                                        f"its commit failed ({exc}): the next run finishes it")  # fmt: skip
        move.timings["end"] = self.clock()
        entry = self.report.entry(move.spec, "created" if rec.previous is None else "replaced", move=move)
        self.report.audit(rec.tenant, audit_result, rec, entry)
        self.report.changed = True

    def _finish_commit(self, rec: MoveRecord, spec: Optional[dict]) -> None:
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
            self._write_config_files(spec)
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
        self._put_back(move.record)
        self.report.entry(move.spec, "put_back", move=move)
        self.report.audit(move.name, "failed, put back", move.record, self.report.results[move.name])

    def _put_back(self, rec: MoveRecord) -> bool:
        """Undo a move, every undo step even when an earlier one failed. True when the tenant is back and ready."""
        rec.put_back = rec.put_back or PutBack(done=[], errors=[])
        rec.put_back.errors = []
        self.checkpoints.enter(rec, Step.PUT_BACK)
        undo = {Undo.REMOVE_NEW: self._remove_new, Undo.RESTORE_DATA: self._restore_data,
                Undo.RESTORE_SITE: self._restore_site, Undo.RENAME_PREVIOUS: self._rename_previous,
                Undo.START_PREVIOUS: self._start_previous}  # fmt: skip
        for step in undo_plan(rec.reached):
            if step.value in rec.put_back.done:
                continue
            try:
                undo[step](rec)
                rec.put_back.done.append(step.value)
            except Exception as exc:  # every put-back step runs; what failed is reported
                rec.put_back.errors.append(f"{step.value}: {self.mask(str(exc))}")
            self.checkpoints.mark(rec, f"putback.{step.value}")
        rec.standing, healthy = self._standing(rec)
        self.checkpoints.mark(rec, "putback.standing")
        # Done only when every undo step is: a put-back step that failed is tried again by the next run.
        if not rec.put_back.errors and (healthy or not (rec.previous and rec.previous.running)):
            self.journal.done(rec.tenant)
        return healthy

    def _remove_new(self, rec: MoveRecord) -> None:
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
        if not rec.previous:
            return
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
            raise RolloutError(f"the previous container of {rec.tenant} no longer exists")
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
    def recover(self) -> list:
        """Finish or undo what a dead run left in the journal, as the step table says; one outcome per tenant."""
        for tenant, rec in self.journal.pending().items():
            spec = next((s for s in self.specs if s["name"] == tenant), None)
            step = rec.step
            try:
                outcome = self._recover(rec, spec, rule_for(step).if_interrupted)
            except (EngineCallError, RolloutError, OSError) as exc:
                outcome = f"could not recover ({self.mask(str(exc))}): its journal is kept for the next run"
            entry = {"tenant": tenant, "run_id": rec.run_id, "step": step, "outcome": outcome}
            if rec.writes_aside is not None:
                entry["writes_set_aside"] = {"aside": rec.writes_aside.aside, "since": rec.writes_aside.since,
                                             "count": rec.writes_aside.count, "files": rec.writes_aside.files}  # fmt: skip
            self.report.recovered.append(entry)
            self.report.changed = True
        return self.report.recovered

    def _recover(self, rec: MoveRecord, spec: Optional[dict], recovery: Recovery) -> str:
        step = rec.step
        if recovery is Recovery.DISCARD:
            self._remove_new(rec)
            self.journal.done(rec.tenant)
            self.report.audit(rec.tenant, "recovered: nothing had been stopped", rec)
            return "nothing had been stopped; removed the half-made container"
        if recovery is Recovery.FINISH:
            self._finish_commit(rec, spec)
            self.journal.done(rec.tenant)
            self.report.audit(rec.tenant, "recovered: commit finished", rec)
            return "finished the interrupted commit"
        if recovery is Recovery.JUDGE and self._judge_now(rec, spec):
            return f"the new version ({rec.target_digest[:19]}) was running, ready and passed its checks: committed, with what users wrote on it"
        self._put_back(rec)
        self.report.audit(rec.tenant, f"recovered: put back (interrupted at {step})", rec)
        return f"put back (interrupted at {step}): {rec.standing}"

    def _judge_now(self, rec: MoveRecord, spec: Optional[dict]) -> bool:
        """A new version that was started before the crash may have served users since: judge it now with the same
        readiness and smoke checks; passing, commit it (keeping what they wrote). False: it is to be put back."""
        if not rec.started or not rec.new.id:
            return False
        facts = self.engine.container(rec.new.id)
        if facts is None or facts["status"] not in ("running", "restarting") or facts["name"] != rec.container:
            return False
        spec = spec or {"name": rec.tenant, "container": rec.container, "image": rec.target_image}
        move = Move(
            spec=spec, record=rec, data=self.data.of(rec), site=self.sites.render(spec) if "port" in spec else None
        )
        move.timings["begin"] = self.clock()
        self._verify([move])
        if move.failure:
            rec.standing = None
            return False
        self._commit(move, "recovered: rolled forward (ready and passing its checks after the crash)")
        return True


def _host_port(facts: dict) -> Optional[int]:
    for published in facts.get("published_ports") or []:
        parts = published.split(":")
        if len(parts) >= 3 and parts[-2].isdigit():
            return int(parts[-2])
    return None


__all__ = ["Rollout", "RolloutError", "Settings", "SimulatedCrash"]
