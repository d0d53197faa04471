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

This class runs a host's transaction; the parts do: ``Planner`` (the read-only look before anything changes),
``MoveSteps`` (a batch of moves and their put-backs), ``Containers`` (engine calls), ``DataSteps`` (snapshot,
restore, put-back of data), ``Sites`` (nginx), ``Readiness`` (when a container is ready), ``Report`` (results
and audit).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._format import short_digest
from ansible_collections.pinned.release.plugins.module_utils._http import request
from ansible_collections.pinned.release.plugins.module_utils._nginx import Nginx, NginxError
from ansible_collections.pinned.release.plugins.module_utils._readiness import AppHealth, Readiness
from ansible_collections.pinned.release.plugins.module_utils._rollout_containers import Containers
from ansible_collections.pinned.release.plugins.module_utils._rollout_data import DataSteps
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import (
    NEXT_SUFFIX,
    Move,
    RolloutError,
    Settings,
    SimulatedCrash,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_move import MoveSteps
from ansible_collections.pinned.release.plugins.module_utils._rollout_plan import Planner, adopted_data
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import (
    SCHEMA,
    Checkpoints,
    MoveJournal,
    MoveRecord,
    NewContainer,
    Previous,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_report import Report
from ansible_collections.pinned.release.plugins.module_utils._rollout_sites import Sites
from ansible_collections.pinned.release.plugins.module_utils._rollout_steps import (
    Recovery,
    rule_for,
)
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.module_utils._snapshots import TenantData
from ansible_collections.pinned.release.plugins.module_utils._tenants import MANAGED_LABEL, TENANT_LABEL


class Rollout:
    """One host's release transaction (the lock is taken by the caller)."""

    def __init__(self, engine, specs: list, app: dict, settings: Settings, run: dict, journal: MoveJournal,
                 nginx: Optional[Nginx], send: Callable = request, audit: Callable = lambda record: None,
                 clock: Callable = time.time, sleep: Callable = time.sleep,
                 failpoint: Optional[Callable] = None, mask: Optional[SecretMask] = None) -> None:  # fmt: skip
        self.engine = engine
        self.specs = specs
        self.settings = settings
        self.run = run
        self.journal = journal
        self.clock = clock
        self.mask = mask or SecretMask()
        self.checkpoints = Checkpoints(journal, failpoint)
        health = AppHealth(
            settings.health_path, dict(settings.health_json), settings.version_path, settings.version_key
        )
        self.readiness = Readiness(engine, health, send=send, clock=clock, sleep=sleep)
        self.sites = Sites(nginx if settings.nginx_enabled else None, app, settings.nginx_http_port,
                           settings.nginx_https_port, settings.nginx_default_server,
                           settings.nginx_access_log_dir)  # fmt: skip
        self.containers = Containers(engine, sleep)
        self.data = DataSteps(settings.snapshot_exclude, settings.restore_data_on_failure, run["run_id"], clock,
                              self.checkpoints)  # fmt: skip
        self.report = Report(run, clock, audit)
        self.planner = Planner(engine, specs, app, settings, self.readiness, self.sites, journal, self.expected_version)
        self.moves = MoveSteps(engine, settings, run, journal, self.checkpoints, self.containers, self.data, self.sites,
                               self.readiness, self.report, self.expected_version, clock, self.mask)  # fmt: skip
        self._versions: dict = {}
        self._unchanged: dict = {}  # tenant -> facts this run looked at and left as they were

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
        return self.planner.status(audit_log, self._unchanged)

    # ================================================================== the run
    def execute(self) -> dict:
        """Recover what a dead run left, then bring every tenant to its spec. Returns the result."""
        self._refuse_what_cannot_start()
        self.recover()
        stuck = {
            entry["tenant"]: entry["outcome"] for entry in self.report.recovered if self.journal.load(entry["tenant"])
        }
        plan = {}
        for spec in self.specs:
            if spec["name"] in stuck:  # its journal stays until its recovery finishes: never start another move over it
                self.report.entry(spec, "failed", failure=f"its recovery is not finished ({stuck[spec['name']]})")
                continue
            try:
                plan[spec["name"]] = self.planner.tenant_state(spec)
            except EngineCallError as exc:
                self.report.entry(spec, "failed", failure=f"looking at its container failed: {exc}")
        refusals = self.planner.foreign_data_problems(plan) + self._missing_data(plan)
        if refusals:
            done = "; ".join(f"{r['tenant']}: {r['outcome']}" for r in self.report.recovered)
            raise RolloutError("; ".join(refusals) + (f". Before that, this run recovered {done}" if done else
                                                      ". Nothing was changed"))  # fmt: skip
        pending = [s for s in self.specs if s["name"] in plan and
                   (plan[s["name"]]["action"] != "none" or s["name"] in self.settings.restore_snapshots)]  # fmt: skip
        current = {name: (state["facts"] or {}).get("digest") for name, state in plan.items()}
        restores, retries = self.planner.restore_plan(pending, current)
        self._prepare_dirs(set(stuck))
        if pending:
            self._pull_first(pending)
            adoptions = {s["name"]: adopted_data(s, plan[s["name"]]["facts"]) for s in pending}
            self.planner.check_space(pending, restores, retries, adoptions)
        self._apply_sites_outside({s["name"] for s in pending})
        for spec in self.specs:
            if spec["name"] in plan and spec not in pending:
                self.moves.write_config_files(spec)
                if spec["name"] not in self.report.results:  # a recovery that committed it says more
                    self.report.entry(spec, "unchanged", plan[spec["name"]]["facts"])
                    self._unchanged[spec["name"]] = plan[spec["name"]]["facts"]
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
            if not self.moves.move_batch(moves) and self.settings.failure_scope == "batch":
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

    def _prepare_dirs(self, stuck: set) -> None:
        for spec in self.specs:
            if spec["name"] in stuck:
                continue  # in transit: its folders are where its journal says, an extraction included
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

    def recover(self) -> list:
        """Finish or undo what a dead run left in the journal, as the step table says; one outcome per tenant."""
        for tenant, rec in self.journal.pending().items():
            spec = next((s for s in self.specs if s["name"] == tenant), None)
            step = rec.step
            try:
                outcome = self._recover(rec, spec, rule_for(step).if_interrupted)
            except (EngineCallError, RolloutError, OSError) as exc:
                outcome = f"could not recover ({self.mask.text(str(exc))}): its journal is kept for the next run"
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
            self.moves.remove_new(rec)
            self.journal.done(rec.tenant)
            self.report.audit(rec.tenant, "recovered: nothing had been stopped", rec)
            return "nothing had been stopped; removed the half-made container"
        if recovery is Recovery.FINISH:
            self.moves.finish_commit(rec, spec)
            self.journal.done(rec.tenant)
            self.report.audit(rec.tenant, "recovered: commit finished", rec)
            return "finished the interrupted commit"
        if recovery is Recovery.JUDGE and self._judge_now(rec, spec):
            return f"the new version ({short_digest(rec.target_digest)}) was running, ready and passed its checks: committed, with what users wrote on it"
        self.moves.put_back(rec)
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
        declared = spec is not None
        spec = spec or {"name": rec.tenant, "container": rec.container, "image": rec.target_image}
        move = Move(spec=spec, record=rec, data=self.data.of(rec), site=self.sites.render(spec) if declared else None)
        move.timings["begin"] = self.clock()
        self.moves.verify([move])
        if move.failure:
            rec.standing = None
            return False
        self.moves.commit(move, "recovered: rolled forward (ready and passing its checks after the crash)", declared)
        return True


__all__ = ["Rollout", "RolloutError", "Settings", "SimulatedCrash"]
