# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release transaction of one host: bring its tenants to a digest, or put each one back exactly.

Per batch of tenants, each step is written to the tenant's journal *before* it is done::

    create   the new container, under a temporary name (nothing stops yet)
    stop     the running container (kept, renamed: it is the exact previous image and config)
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
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._checks import dig, run_checks
from ansible_collections.pinned.release.plugins.module_utils._drift import SECRET_MASK, compare, parse_expectation
from ansible_collections.pinned.release.plugins.module_utils._engine import container_config
from ansible_collections.pinned.release.plugins.module_utils._http import request
from ansible_collections.pinned.release.plugins.module_utils._journal import Journal, write_atomic
from ansible_collections.pinned.release.plugins.module_utils._nginx import (
    COMMON_FILE,
    Nginx,
    NginxError,
    render_common,
    render_site,
    site_file,
)
from ansible_collections.pinned.release.plugins.module_utils._reference import parse_pinned_reference
from ansible_collections.pinned.release.plugins.module_utils._snapshots import (
    SPACE_MARGIN_BYTES,
    TenantData,
    data_size,
    free_bytes,
    human,
    iso,
)
from ansible_collections.pinned.release.plugins.module_utils._tenants import (
    MANAGED_LABEL,
    TENANT_LABEL,
    env_file_content,
    expectation,
    secrets_file_content,
)

NEXT_SUFFIX = ".pinned-next"
PREV_SUFFIX = ".pinned-prev"
DATA_MODES = ("current", "auto", "restore")
POLL_SECONDS = 0.1


class RolloutError(Exception):
    """The transaction refuses to start or cannot go on; nothing was left half-done."""


class SimulatedCrash(BaseException):  # it stands for a process dying, not an error
    """Raised by a unit test's failpoint: the process 'dies' right after a journal write."""


@dataclass
class Settings:
    batch_size: int = 1
    health_timeout: float = 120.0
    snapshot_keep: int = 5
    aside_keep: int = 2
    protect_digests: tuple = ()
    restore_data_on_failure: bool = True
    # current: run on the data as it is; auto: if the target fails on it, restore the data from before
    # the tenant last left the target and try again; restore: restore that data first.
    data_mode: str = "current"
    restore_snapshots: dict = field(default_factory=dict)
    remove_undeclared: bool = False
    smoke_checks: list = field(default_factory=list)
    health_path: Optional[str] = "/health"
    health_json: dict = field(default_factory=dict)
    version_path: Optional[str] = None
    version_key: str = "version"
    version_label: Optional[str] = None
    snapshot_exclude: tuple = ()
    nginx_enabled: bool = True
    nginx_http_port: int = 80
    nginx_https_port: int = 443
    nginx_default_server: bool = True
    log_lines: int = 20


@dataclass
class Move:
    """One tenant's change in this run; ``record`` is what its journal holds."""

    spec: dict
    record: dict
    data: TenantData
    site: Optional[str] = None  # the site content to switch to once ready
    failure: Optional[str] = None
    logs: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    restore_meta: Optional[dict] = None


@dataclass
class Probe:
    """A container whose readiness is awaited: the new one of a move, or a previous one being put back."""

    name: str
    container: str
    port: int
    image: str
    ready_at: Optional[float] = None
    logs: list = field(default_factory=list)


class Rollout:
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

    # ================================================================== planning (read-only)
    def tenant_state(self, spec: dict) -> dict:
        """What runs for this tenant, and what differs from its spec (drift entries, secrets masked)."""
        ref = parse_pinned_reference(spec["image"])
        facts = self.engine.container(spec["container"], ref)
        # A container that is running but still starting is not replaced again; the report still shows it.
        replace_for = compare(parse_expectation(expectation(spec, "running"), 0), facts)
        if facts is None:
            action = "create"
        elif replace_for:
            action = "replace"
        else:
            action = "none"
        drift = compare(parse_expectation(expectation(spec, "healthy"), 0), facts)
        if facts and facts["status"] == "running" and facts["health"] == "starting" and self.settings.health_path:
            # Docker's own healthcheck lags behind (its interval); the app answering its health check is ready.
            probe = Probe(spec["name"], facts["id"], spec["port"], spec["image"])
            if self._readiness(probe, {})[0] == "ok":
                drift = [d for d in drift if d["field"] != "health"]
        return {"facts": facts, "drift": drift, "action": action}

    def desired_sites(self) -> dict:
        if self.nginx is None:
            return {}
        sites = {site_file(s["name"]): render_site(s, self.app, self.settings.nginx_http_port,
                                                   self.settings.nginx_https_port) for s in self.specs}  # fmt: skip
        tls = any(s.get("tls_cert") for s in self.specs)
        sites[COMMON_FILE] = render_common(self.settings.nginx_default_server, tls, self.settings.nginx_http_port,
                                           self.settings.nginx_https_port)  # fmt: skip
        return sites

    def unexpected(self) -> list:
        """Managed containers on this host that no declared tenant owns (leftovers of ours excluded)."""
        declared = {s["container"] for s in self.specs}
        ours = declared | {c + NEXT_SUFFIX for c in declared} | {c + PREV_SUFFIX for c in declared}
        return [c for c in self.engine.containers_with_label(MANAGED_LABEL) if c["name"] not in ours]

    def plan(self) -> dict:
        """The whole picture without changing anything: check mode, and the first half of a run."""
        tenants, diffs = [], []
        sites_now = self.nginx.current() if self.nginx else {}
        sites_wanted = self.desired_sites()
        for spec in self.specs:
            state = self.tenant_state(spec)
            facts = state["facts"]
            entry = {
                "name": spec["name"],
                "container": spec["container"],
                "action": state["action"],
                "drift": state["drift"],
                "current_image": facts["image"] if facts else None,
                "current_digest": facts["digest"] if facts else None,
                "status": facts["status"] if facts else None,
                "health": facts["health"] if facts else None,
                "image": spec["image"],
            }
            files = self._config_files(spec)
            entry["files_changed"] = sorted(os.path.basename(p) for p, (old, new) in files.items() if old != new)
            tenants.append(entry)
            if state["action"] != "none":
                diffs.append({"before_header": f"{spec['container']} (container)", "after_header": f"{spec['container']} (container)",
                              "before": _describe(facts), "after": f"image: {spec['image']}\n"})  # fmt: skip
            old_env, new_env = files[spec["env_file"]]
            if old_env != new_env:
                diffs.append({"before_header": spec["env_file"], "after_header": spec["env_file"],
                              "before": old_env or "", "after": new_env})  # fmt: skip
            if files[spec["secrets_file"]][0] != files[spec["secrets_file"]][1]:
                diffs.append({"before_header": spec["secrets_file"], "after_header": spec["secrets_file"],
                              "before": "(secret values not shown)\n", "after": "(changed; secret values not shown)\n"})  # fmt: skip
        site_changes = {name: content for name, content in sites_wanted.items() if sites_now.get(name) != content}
        removals = sorted(name for name in sites_now if name not in sites_wanted) if self.nginx else []
        for name, content in site_changes.items():
            diffs.append(
                {"before_header": name, "after_header": name, "before": sites_now.get(name) or "", "after": content}
            )
        for name in removals:
            diffs.append({"before_header": name, "after_header": name, "before": sites_now[name], "after": ""})
        unexpected = self.unexpected()
        return {
            "tenants": tenants,
            "unexpected": [self._unexpected_entry(c) for c in unexpected],
            "sites_to_change": sorted(site_changes),
            "sites_to_remove": removals,
            "pending_journal": sorted(self.journal.pending()),
            "diff": diffs,
        }  # fmt: skip

    def _unexpected_entry(self, container: dict) -> dict:
        facts = self.engine.container(container["id"]) or {}
        return {"name": container["name"], "tenant": container["labels"].get(TENANT_LABEL), "status": container["status"],
                "image": facts.get("image"), "digest": facts.get("digest")}  # fmt: skip

    def _config_files(self, spec: dict) -> dict:
        """{path: (current content or None, wanted content)} of the tenant's env files."""
        files = {}
        for path, wanted in (
            (spec["env_file"], env_file_content(spec)),
            (spec["secrets_file"], secrets_file_content(spec)),
        ):
            try:
                with open(path, encoding="utf-8") as handle:
                    files[path] = (handle.read(), wanted)
            except (FileNotFoundError, NotADirectoryError):
                files[path] = (None, wanted)
        return files

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
        pending = [spec for spec in self.specs if plan[spec["name"]]["action"] != "none"]
        restores = self._restore_plan(pending)
        self._prepare_dirs()
        if pending:
            self._pull_first(pending)
            self._check_space(pending, restores)
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

    def _restore_plan(self, pending: list) -> dict:
        """{tenant: snapshot metadata} for tenants whose data is restored before the target starts."""
        restores = {}
        for spec in pending:
            data = TenantData(spec["name"], spec["dir"], self.settings.snapshot_exclude)
            explicit = self.settings.restore_snapshots.get(spec["name"])
            if explicit:
                meta = next((m for m in data.snapshots() if m["snapshot"] == explicit), None)
                if meta is None:
                    raise RolloutError(
                        f"{spec['name']}: the snapshot to restore, {explicit}, does not exist on this host"
                    )
                restores[spec["name"]] = meta
            elif self.settings.data_mode == "restore":
                meta = data.rollback_snapshot(spec["digest"])
                if meta is None:
                    raise RolloutError(
                        f"{spec['name']}: no snapshot taken when it left {spec['digest'][:19]}, so its data from "
                        "then cannot be restored: restore one by hand (docs/recovery.md) or roll back on the current data"
                    )
                restores[spec["name"]] = meta
        return restores

    def _pull_first(self, pending: list) -> None:
        for image in sorted({spec["image"] for spec in pending}):
            if not self.engine.image_present(image):
                try:
                    self.engine.pull(image)
                except Exception as exc:  # any engine failure here stops the run before a change
                    raise RolloutError(f"pulling {image} failed before any tenant was touched: {exc}") from exc
                if not self.engine.image_present(image):
                    raise RolloutError(f"pulling {image} did not leave that digest on the host; nothing was touched")
                self.changed = True
            labels = self.engine.image_labels(image) if self.settings.version_label else {}
            self._expected_versions[image] = labels.get(self.settings.version_label) if labels else None

    def _check_space(self, pending: list, restores: dict) -> None:
        """Refuse (before anything stops) when the snapshots and restores would not fit."""
        needs: dict = {}
        for spec in pending:
            path = spec["snapshot_dir"]
            device = os.stat(path).st_dev
            size = data_size(spec["data_dir"], self.settings.snapshot_exclude)
            if spec["name"] in restores:
                size += data_size(spec["data_dir"])  # the restored copy sits beside the data set aside
            entry = needs.setdefault(device, {"path": path, "bytes": SPACE_MARGIN_BYTES, "tenants": []})
            entry["bytes"] += size
            entry["tenants"].append(f"{spec['name']} {human(size)}")
        for entry in needs.values():
            free = free_bytes(entry["path"])
            if free < entry["bytes"]:
                raise RolloutError(
                    f"not enough free space for the data snapshots under {os.path.dirname(os.path.dirname(entry['path']))}: "
                    f"need {human(entry['bytes'])} ({', '.join(entry['tenants'])}), {human(free)} free. Nothing was "
                    "stopped: free some space (old snapshots, data.failed-* folders) and re-run"
                )

    def _apply_sites(self, exclude: set) -> None:
        """The common file, removed tenants' sites, and the sites of tenants not being replaced."""
        if self.nginx is None:
            return
        wanted = self.desired_sites()
        current = self.nginx.current()
        changes = {name: content for name, content in wanted.items()
                   if name not in {site_file(n) for n in exclude} and current.get(name) != content}  # fmt: skip
        # A tenant being replaced keeps its current site until its new container is ready.
        changes.update({name: None for name in current if name not in wanted})
        if changes:
            try:
                self.nginx_changes += self.nginx.apply(changes)
            except NginxError as exc:
                raise RolloutError(f"nginx: {exc}. No tenant was touched") from exc
            self.changed = True

    def _write_config_files(self, spec: dict) -> None:
        for path, (old, new) in self._config_files(spec).items():
            if old != new:
                write_atomic(path, new, 0o600 if path == spec["secrets_file"] else 0o640)
                self.changed = True

    def _remove_undeclared(self) -> None:
        unexpected = self.unexpected()
        if not unexpected:
            return
        if not self.settings.remove_undeclared:
            self.warnings.append(
                "managed container(s) no tenant declares are left running: "
                + ", ".join(c["name"] for c in unexpected)
                + " (remove_undeclared removes them; their data stays)"
            )
            return
        for container in unexpected:
            self.engine.remove(container["id"])
            self.changed = True
            self._audit({"tenant": container["labels"].get(TENANT_LABEL) or container["name"], "container": container["name"],
                         "result": "removed (not declared)", "from": None, "to": None})  # fmt: skip
            self.results.setdefault("_undeclared", []).append(container["name"])

    # ================================================================== one batch
    def _new_move(self, spec: dict, facts: Optional[dict], restore: Optional[dict]) -> Move:
        previous = None
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
            "prev_name": spec["container"] + PREV_SUFFIX,
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
        try:
            for move in moves:
                self._create(move)
            self._parallel(self._stop, moves)
            for move in moves:
                self._snapshot(move)
            for move in moves:
                if move.restore_meta:
                    self._restore(move, move.restore_meta, exact=True)
            for move in moves:
                self._swap(move)
            for move in moves:
                self._start(move)
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
            for move in moves:
                self._put_back(move)
            return False
        for move in moves:
            self._commit(move)
        return True

    def _parallel(self, function: Callable, moves: list) -> None:
        if len(moves) == 1:
            function(moves[0])
            return
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(moves), 8)) as pool:
            for future in [pool.submit(function, m) for m in moves]:
                future.result()

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
        move.timings["started"] = self.clock()

    def _verify(self, moves: list) -> None:
        for move in moves:
            self._step(move, "verify")
        failures = self._wait_moves(moves)
        if failures and self.settings.data_mode == "auto":
            retry = [m for m in moves if m.spec["name"] in failures and self._can_retry_on_restored_data(m)]
            for move in retry:
                self._retry_on_restored_data(move)
            if retry:
                for move in retry:
                    failures.pop(move.spec["name"], None)
                failures.update(self._wait_moves(retry))
        if failures:
            for move in moves:
                if move.spec["name"] in failures:
                    move.failure = failures[move.spec["name"]]
            first = next(iter(failures))
            raise RolloutError(f"{first}: {failures[first]}")
        for move in moves:
            if move.site is not None and move.record["previous_site"] != move.site:
                move.record["site_switched"] = True
                self.journal.save(move.record)
                try:
                    self.nginx_changes += self.nginx.apply({site_file(move.spec["name"]): move.site})
                except NginxError as exc:
                    self._fail(move, f"nginx: {exc}")
        for move in moves:
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
            self.engine.stop(rec["next"]["id"], move.spec["stop_timeout"])
        except Exception as exc:
            self._fail(move, f"stopping the container that failed on the current data failed: {exc}")
        self._restore(move, move.restore_meta, exact=False)
        rec["started"] = True
        self._step(move, "start")
        try:
            self.engine.start(rec["next"]["id"])
        except Exception as exc:
            self._fail(move, f"starting again on the restored data failed: {exc}")
        move.timings["started"] = self.clock()

    # ================================================================== health gate and checks
    def _probe(self, move: Move) -> Probe:
        return Probe(move.spec["name"], move.record["next"]["id"] or move.spec["container"], move.spec["port"],
                     move.spec["image"])  # fmt: skip

    def wait_ready(self, probes: list, timeout: Optional[float] = None) -> dict:
        """Wait until each probe's container is ready; {name: why} of those that are not (fails fast)."""
        timeout = self.settings.health_timeout if timeout is None else timeout
        begin = self.clock()
        baseline: dict = {}
        pending = {p.name: p for p in probes}
        failures: dict = {}
        while pending:
            for name, probe in list(pending.items()):
                verdict, why = self._readiness(probe, baseline)
                if verdict == "ok":
                    probe.ready_at = self.clock()
                    del pending[name]
                elif verdict == "fail":
                    failures[name] = why
                    probe.logs = self._logs(probe.container)
                    del pending[name]
            if not pending:
                break
            if self.clock() - begin >= timeout:
                for name, probe in pending.items():
                    failures[name] = (
                        f"not ready after the {timeout:g} s health timeout ({self._readiness(probe, baseline)[1]})"
                    )
                    probe.logs = self._logs(probe.container)
                break
            self.sleep(POLL_SECONDS)
        return failures

    def _wait_moves(self, moves: list) -> dict:
        probes = [self._probe(m) for m in moves]
        failures = self.wait_ready(probes)
        for move, probe in zip(moves, probes):
            if probe.ready_at is not None:
                move.timings["ready"] = probe.ready_at
            move.logs = probe.logs
        return failures

    def _logs(self, container: str) -> list:
        raw = self.engine.logs(container, self.settings.log_lines * 3)
        return [line for line in raw.splitlines() if self.mask(line) == line][-self.settings.log_lines :]

    def _readiness(self, probe: Probe, baseline: dict) -> tuple:
        facts = self.engine.container(probe.container)
        if facts is None:
            return "fail", "its container disappeared"
        restarts = facts.get("restart_count") or 0
        baseline.setdefault(probe.name, restarts)
        if facts["status"] in ("exited", "dead"):
            return "fail", f"container exited (exit code {facts.get('exit_code')})"
        if facts["status"] == "restarting" or restarts > baseline[probe.name]:
            return "fail", "container is restarting (crash loop)"
        if facts["health"] == "unhealthy":
            return "fail", "healthcheck reports unhealthy"
        if facts["status"] != "running":
            return "wait", f"container is {facts['status']}"
        if not self.settings.health_path:
            if facts["health"] in ("healthy", "none"):
                return "ok", ""
            return "wait", f"health is {facts['health']}"
        base = f"http://127.0.0.1:{probe.port}"
        answer = self.send(
            "GET", base + self.settings.health_path, headers={}, body=None, timeout=2.0, server_name=None
        )
        if answer.status != 200:
            return "wait", f"{self.settings.health_path} answers {answer.status if answer.status > 0 else answer.error}"
        if self.settings.health_json:
            try:
                body = json.loads(answer.text)
            except ValueError:
                return "wait", f"{self.settings.health_path} answer is not JSON"
            if any(dig(body, key) != value for key, value in self.settings.health_json.items()):
                return "wait", f"{self.settings.health_path} answers {answer.text[:60]}"
        expected = self._expected_versions.get(probe.image)
        if expected and self.settings.version_path:
            version = self.send("GET", base + self.settings.version_path, headers={}, body=None, timeout=2.0,
                                server_name=None)  # fmt: skip
            try:
                actual = dig(json.loads(version.text), self.settings.version_key)
            except ValueError:
                actual = None
            if actual != expected:
                return "fail", f"{self.settings.version_path} says version {actual!r}, the image declares {expected!r}"
        return "ok", ""

    def smoke_checks(self, spec: dict) -> list:
        if not self.settings.smoke_checks:
            return []
        if self.nginx is None:
            base, server_name = f"http://127.0.0.1:{spec['port']}", None
        elif spec.get("tls_cert"):
            base, server_name = f"https://127.0.0.1:{self.settings.nginx_https_port}", spec["domain"]
        else:
            base, server_name = f"http://127.0.0.1:{self.settings.nginx_http_port}", None
        outcomes, _values = run_checks(self.settings.smoke_checks, base, host_header=spec["domain"],
                                       server_name=server_name, send=self.send)  # fmt: skip
        return outcomes

    # ================================================================== commit and put back
    def _commit(self, move: Move) -> None:
        self._step(move, "commit")
        self.finish_commit(move.record, move.spec)
        move.timings["end"] = self.clock()
        entry = self._entry(move.spec, "created" if move.record["previous"] is None else "replaced", None, move)
        self.results[move.spec["name"]] = entry
        self._audit(self._audit_record(move.record, "ok", entry))
        self.journal.done(move.spec["name"])
        self.changed = True

    def finish_commit(self, rec: dict, spec: Optional[dict]) -> None:
        """The idempotent end of a move (also run by recovery): old container gone, files written, rotation."""
        if rec["previous"]:
            self.engine.remove(rec["previous"]["id"])
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

    def _put_back(self, move: Move) -> None:
        self.put_back(move.record, move.spec)
        entry = self._entry(move.spec, "put_back", None, move)
        self.results[move.spec["name"]] = entry
        self._audit(self._audit_record(move.record, "failed, put back", entry))

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
        holder = self.engine.container(rec["container"])
        if holder is not None and holder["id"] != previous["id"]:
            raise RolloutError(f"{rec['container']} is taken by another container ({holder['id'][:12]}); "
                               f"the previous one is {rec['prev_name']}")  # fmt: skip
        if holder is None:
            self.engine.rename(previous["id"], rec["container"])

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
        container = rec["container"]
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

    def _docker_health_settled(self, container: str) -> Optional[str]:
        """Wait (within the health timeout) for Docker's own healthcheck to leave 'starting'; its status then."""
        deadline = self.clock() + self.settings.health_timeout
        while True:
            facts = self.engine.container(container)
            health = facts["health"] if facts else None
            if health != "starting" or self.clock() >= deadline:
                return health
            self.sleep(POLL_SECONDS * 5)

    def _spec_for(self, rec: dict) -> Optional[dict]:
        return next((s for s in self.specs if s["name"] == rec["tenant"]), None)

    # ================================================================== recovery
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

    # ================================================================== results and audit
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


def _describe(facts: Optional[dict]) -> str:
    if facts is None:
        return "(no container)\n"
    return f"image: {facts['image']}\ndigest: {facts.get('digest')}\nstatus: {facts['status']}\n"


__all__ = ["DATA_MODES", "SECRET_MASK", "Rollout", "RolloutError", "Settings", "SimulatedCrash"]
