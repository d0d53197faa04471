# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release transaction's look before it leaps: read-only, so check mode and drift use exactly it.

What differs per tenant, what is refused before anything changes (data started elsewhere, a data folder that
cannot be snapshotted, a restore that is not there, not enough free space), the fleet page's status.
"""

from __future__ import annotations

import datetime
import os
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._drift import compare, parse_expectation
from ansible_collections.pinned.release.plugins.module_utils._format import short_digest
from ansible_collections.pinned.release.plugins.module_utils._isolation import shared_problems
from ansible_collections.pinned.release.plugins.module_utils._readiness import Probe, Readiness
from ansible_collections.pinned.release.plugins.module_utils._reference import parse_pinned_reference
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import (
    RolloutError,
    Settings,
    own_containers,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import MoveJournal
from ansible_collections.pinned.release.plugins.module_utils._rollout_sites import Sites
from ansible_collections.pinned.release.plugins.module_utils._snapshots import (
    SPACE_MARGIN_BYTES,
    TenantData,
    data_size,
    free_bytes,
    human,
)
from ansible_collections.pinned.release.plugins.module_utils._status import host_status
from ansible_collections.pinned.release.plugins.module_utils._tenants import (
    MANAGED_LABEL,
    TENANT_LABEL,
    env_file_content,
    expectation,
    secrets_file_content,
)
from ansible_collections.pinned.release.plugins.module_utils._tls import file_problem as certificate_file_problem


def adopted_data(spec: dict, facts: Optional[dict]) -> Optional[str]:
    """The legacy data folder when the container found is the one the tenant adopts (``adopt_from``)."""
    adopt = spec.get("adopt_from") or {}
    if facts is not None and adopt.get("container") and facts["name"] == adopt["container"]:
        return adopt["data"]
    return None


def config_files(spec: dict) -> dict:
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


class Planner:
    def __init__(self, engine, specs: list, app: dict, settings: Settings, readiness: Readiness, sites: Sites,
                 journal: MoveJournal, expected_versions: Callable) -> None:  # fmt: skip
        self.engine = engine
        self.specs = specs
        self.app = app
        self.settings = settings
        self.readiness = readiness
        self.sites = sites
        self.journal = journal
        self.expected_versions = expected_versions  # image -> the version its label declares (or None)
        self.seen: dict = {}  # tenant -> the facts the last plan looked at

    def probe(self, spec: dict, container: str) -> Probe:
        return Probe(spec["name"], container, spec["port"], self.expected_versions(spec["image"]))

    def tenant_state(self, spec: dict) -> dict:
        """What runs for this tenant, and what differs from its spec (drift entries, secrets masked)."""
        ref = parse_pinned_reference(spec["image"])
        facts = self.engine.container(spec["container"], ref)
        adopt = spec.get("adopt_from")
        if facts is None and adopt:
            # Not yet adopted: the hand-started container is the one to replace (its data is copied in first).
            facts = self.engine.container(adopt["container"], ref)
        config = compare(parse_expectation(expectation(spec), 0), facts)
        if facts is None:
            action = "create"
        elif config:
            action = "replace"
        elif facts["status"] != "running":
            action = "replace"  # stopped or crash-looping: a replace starts it again (the old one stays until then)
        else:
            action = "none"  # running, maybe still starting: not replaced again; the drift says how it is
        drift = config
        if facts is not None:
            verdict = self.readiness.judge(facts, self.probe(spec, facts["id"]), docker_healthy_suffices=True)
            if verdict[0] != "ok":
                drift = [*config, {"field": "health", "expected": "running and healthy",
                                   "actual": f"{facts['status']}/{facts['health']}: {verdict[1]}"}]  # fmt: skip
        return {"facts": facts, "drift": drift, "action": action}

    def answers_health(self, spec: dict, facts: dict) -> bool:
        """The fleet page's 'healthy': ready as the transaction judges readiness."""
        return self.readiness.judge(facts, self.probe(spec, facts["id"]), docker_healthy_suffices=True)[0] == "ok"

    def data_problems(self) -> list:
        problems = []
        for spec in self.specs:
            problem = TenantData(spec["name"], spec["dir"]).data_problem()
            if problem:
                problems.append(f"tenant {spec['name']}: {problem}")
        return problems

    def foreign_data_problems(self, plan: dict) -> list:
        """Containers to replace that were started by hand on data that is not the tenant's data folder.

        Replacing one would start the tenant on its (empty) data folder: refused, unless the tenant adopts it
        (``adopt_from``), which copies its data in first.
        """
        problems = []
        data_path = str(self.app.get("data_path", "")).rstrip("/")
        for spec in self.specs:
            facts = (plan.get(spec["name"]) or {}).get("facts")
            if facts is None or plan[spec["name"]]["action"] == "none" or MANAGED_LABEL in (facts.get("labels") or {}):
                continue
            if adopted_data(spec, facts):
                continue
            sources = [
                m.rsplit(":", 1)[0] for m in facts.get("mounts") or [] if m.rsplit(":", 1)[-1].rstrip("/") == data_path
            ]
            if sources and sources[0].rstrip("/") == spec["data_dir"].rstrip("/"):
                continue  # recreated by hand on the tenant's own data
            where = f"on {sources[0]}" if sources else "inside the container (on no mount)"
            problems.append(f"tenant {spec['name']}: {facts['name']} was started by hand with its data {where}; replacing it "
                            f"would start the tenant on {spec['data_dir']}. Adopt it first (playbooks/adopt.yml), so its "
                            "data is copied in")  # fmt: skip
        return problems

    def status(self, audit_log: str, known: Optional[dict] = None) -> list:
        """Where each tenant stands (the fleet page), readiness judged as the transaction judges it."""
        return host_status(self.engine, self.specs, audit_log, self.settings.snapshot_exclude, self.answers_health,
                           known, self.settings.version_label)  # fmt: skip

    def unexpected(self, listing: Optional[list] = None, selector: Optional[dict] = None) -> list:
        """Managed containers on this host that no declared tenant owns (leftovers of ours excluded).

        ``selector``: {label: value} that selects the managed containers; None: those with the managed label."""
        ours = set().union(*(own_containers(s["container"]) for s in self.specs))
        if listing is None:
            listing = self.engine.containers_with_label(MANAGED_LABEL) if selector is None else self.engine.listing()
        managed = [c for c in listing if (MANAGED_LABEL in c["labels"] if selector is None else
                                          all(c["labels"].get(k) == v for k, v in selector.items()))]  # fmt: skip
        return [c for c in managed if c["name"] not in ours]

    def shared(self, listing: list) -> dict:
        """{tenant: [phrase]}: other containers that mount a tenant's folder or publish its port (_isolation)."""
        owners = {spec["name"]: {"containers": own_containers(spec["container"]), "folders": [spec["dir"]],
                                 "ports": [spec["port"]]} for spec in self.specs}  # fmt: skip
        others = [c for c in listing if c["name"] not in self.settings.isolation_allow]
        return shared_problems(owners, others, os.path.realpath)

    def certificates(self, now: datetime.datetime) -> dict:
        """{tenant: what}: the tenants whose certificate file cannot be read or expires within tls_min_days."""
        problems = {}
        for spec in self.specs:
            if spec.get("tls_cert"):
                problem = certificate_file_problem(spec["tls_cert"], now, self.settings.tls_min_days)
                if problem:
                    problems[spec["name"]] = problem
        return problems

    def plan(self, selector: Optional[dict] = None) -> dict:
        """The whole picture without changing anything: check mode, and the drift check (verify_container).

        ``selector``: the labels of the managed containers (``unexpected``). ``self.seen`` keeps the facts looked at
        per tenant (secrets in their env: for this host's own use, never returned), so the status inspects none again."""
        tenants, diffs, self.seen = [], [], {}
        sites_now = self.sites.current()
        sites_wanted = self.sites.desired(self.specs)
        for spec in self.specs:
            state = self.tenant_state(spec)
            facts = self.seen[spec["name"]] = state["facts"]
            action = state["action"]
            if action == "none" and spec["name"] in self.settings.restore_snapshots:
                action = "restore"
            files = config_files(spec)
            tenants.append({
                "name": spec["name"],
                "container": spec["container"],
                "action": action,
                "drift": state["drift"],
                "current_image": facts["image"] if facts else None,
                "current_digest": facts["digest"] if facts else None,
                "status": facts["status"] if facts else None,
                "health": facts["health"] if facts else None,
                "restart_count": facts["restart_count"] if facts else None,
                "image": spec["image"],
                "files_changed": sorted(os.path.basename(p) for p, (old, new) in files.items() if old != new),
            })  # fmt: skip
            if action != "none":
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
        removals = sorted(name for name in sites_now if name not in sites_wanted)
        for name, content in site_changes.items():
            diffs.append(
                {"before_header": name, "after_header": name, "before": sites_now.get(name) or "", "after": content}
            )
        for name in removals:
            diffs.append({"before_header": name, "after_header": name, "before": sites_now[name], "after": ""})
        listing = self.engine.listing()
        return {
            "tenants": tenants,
            "unexpected": [self._unexpected_entry(c) for c in self.unexpected(listing, selector)],
            "shared": self.shared(listing),
            "certificates": self.certificates(datetime.datetime.now(datetime.timezone.utc)),
            "sites_to_change": sorted(site_changes),
            "sites_to_remove": removals,
            "pending_journal": sorted(self.journal.pending()),
            "diff": diffs,
        }

    def _unexpected_entry(self, container: dict) -> dict:
        facts = self.engine.container(container["id"]) or {}
        return {"name": container["name"], "tenant": container["labels"].get(TENANT_LABEL), "status": container["status"],
                "image": facts.get("image"), "digest": facts.get("digest")}  # fmt: skip

    def restore_plan(self, pending: list, current: dict) -> tuple:
        """({tenant: snapshot to restore before the target starts}, {tenant: snapshot to restore if it fails}).

        ``current``: tenant -> the digest it runs now. data_mode auto restores first when the tenant runs the very
        version the snapshot was taken for (an emergency rollback across a migration: the target would only exit
        on the migrated data); otherwise it tries the current data and restores only if the target fails on it.
        """
        first, on_failure = {}, {}
        for spec in pending:
            data = TenantData(spec["name"], spec["dir"], self.settings.snapshot_exclude)
            explicit = self.settings.restore_snapshots.get(spec["name"])
            if explicit:
                meta = next((m for m in data.snapshots() if m["snapshot"] == explicit), None)
                if meta is None:
                    raise RolloutError(
                        f"{spec['name']}: the snapshot to restore, {explicit}, does not exist on this host"
                    )
                first[spec["name"]] = meta
                continue
            if self.settings.data_mode == "current":
                continue
            meta = data.rollback_snapshot(spec["digest"])
            if self.settings.data_mode == "restore":
                if meta is None:
                    raise RolloutError(
                        f"{spec['name']}: no snapshot taken when it left {short_digest(spec['digest'])}, so its data from "
                        "then cannot be restored: restore one by hand (docs/recovery.md) or roll back on the current data"
                    )
                first[spec["name"]] = meta
            elif meta is not None and meta.get("to_digest") == current.get(spec["name"]):
                first[spec["name"]] = meta
            elif meta is not None:
                on_failure[spec["name"]] = meta
        return first, on_failure

    def check_space(self, pending: list, restores: dict, retries: dict, adoptions: dict) -> None:
        """Refuse (before anything stops) when what the move may write would not fit: the snapshot, a restore's
        extraction, the extraction a put-back needs, an adopted copy."""
        needs: dict = {}

        def need(path: str, size: int, what: str) -> None:
            entry = needs.setdefault(os.stat(path).st_dev, {"path": path, "bytes": SPACE_MARGIN_BYTES, "parts": []})
            entry["bytes"] += size
            entry["parts"].append(f"{what} {human(size)}")

        for spec in pending:
            name, source = spec["name"], adoptions.get(spec["name"])
            if source and os.path.isdir(source):
                # A put-back of an adoption needs no extraction: the original data was never touched.
                need(os.path.dirname(spec["data_dir"]), data_size(source), f"{name} (its adopted copy)")
                need(spec["snapshot_dir"], data_size(source, self.settings.snapshot_exclude), f"{name} (snapshot)")
                continue
            size = data_size(spec["data_dir"], self.settings.snapshot_exclude)
            need(spec["snapshot_dir"], size, f"{name} (snapshot)")
            restore = restores.get(name) or retries.get(name)
            if restore is not None:
                need(spec["dir"], restore.get("data_bytes", size), f"{name} (restore)")
            if self.settings.restore_data_on_failure and name not in restores:
                # the put-back extracts this move's snapshot (after an exact restore it renames the original back)
                need(spec["dir"], size, f"{name} (a put-back's restore)")
        for entry in needs.values():
            free = free_bytes(entry["path"])
            if free < entry["bytes"]:
                raise RolloutError(
                    f"not enough free space under {os.path.dirname(os.path.dirname(entry['path']))} for what this "
                    f"deploy may write: need {human(entry['bytes'])} ({', '.join(entry['parts'])}), {human(free)} free. "
                    "Nothing was stopped: free some space (old snapshots, data.failed-* folders) and re-run"
                )


def _describe(facts: Optional[dict]) -> str:
    if facts is None:
        return "(no container)\n"
    return f"image: {facts['image']}\ndigest: {facts.get('digest')}\nstatus: {facts['status']}\n"
