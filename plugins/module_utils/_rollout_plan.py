# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release transaction's look before it leaps.

What differs per tenant (check mode and the plan of a run), and what is settled before any tenant
stops: restores, pull, free space, sites, files.
"""

from __future__ import annotations

import os
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._drift import compare, parse_expectation
from ansible_collections.pinned.release.plugins.module_utils._journal import write_atomic
from ansible_collections.pinned.release.plugins.module_utils._nginx import (
    COMMON_FILE,
    NginxError,
    render_common,
    render_site,
    site_file,
)
from ansible_collections.pinned.release.plugins.module_utils._reference import parse_pinned_reference
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import (
    NEXT_SUFFIX,
    PREV_SUFFIX,
    Probe,
    RolloutError,
)
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


class PlanMixin:
    """Planning and preparation of ``Rollout`` (uses its engine, specs, settings, nginx, journal)."""

    def tenant_state(self, spec: dict) -> dict:
        """What runs for this tenant, and what differs from its spec (drift entries, secrets masked)."""
        ref = parse_pinned_reference(spec["image"])
        facts = self.engine.container(spec["container"], ref)
        adopt = spec.get("adopt_from")
        if facts is None and adopt:
            # Not yet adopted: the hand-started container is the one to replace (its data is copied in first).
            facts = self.engine.container(adopt["container"], ref)
        # A container that is running but still starting is not replaced again; the report still shows it.
        replace_for = compare(parse_expectation(expectation(spec, "running"), 0), facts)
        if facts is None:
            action = "create"
        elif replace_for:
            action = "replace"
        else:
            action = "none"
        drift = compare(parse_expectation(expectation(spec, "healthy"), 0), facts)
        if (
            facts
            and facts["status"] == "running"
            and facts["health"] == "starting"
            and self._answers_health(spec, facts)
        ):
            drift = [d for d in drift if d["field"] != "health"]
        return {"facts": facts, "drift": drift, "action": action}

    def _answers_health(self, spec: dict, facts: dict) -> bool:
        """Docker's own healthcheck lags behind (its interval): a running tenant whose app answers its health
        check is ready, as the transaction judges readiness."""
        if not self.settings.health_path:
            return False
        probe = Probe(spec["name"], facts["id"], spec["port"], spec["image"])
        return self._readiness(probe, {})[0] == "ok"

    @staticmethod
    def adopted_data(spec: dict, facts: Optional[dict]) -> Optional[str]:
        """The legacy data folder when the container found is the one the tenant adopts (``adopt_from``)."""
        adopt = spec.get("adopt_from") or {}
        if facts is not None and adopt.get("container") and facts["name"] == adopt["container"]:
            return adopt["data"]
        return None

    def foreign_data_problems(self, plan: dict) -> list:
        """Containers to replace that were started by hand on data that is not the tenant's data folder.

        Replacing one would start the tenant on its (empty) data folder: refused, unless the tenant adopts it
        (``adopt_from``), which copies its data in first.
        """
        problems = []
        data_path = str(self.app.get("data_path", "")).rstrip("/")
        for spec in self.specs:
            facts = plan[spec["name"]]["facts"]
            if facts is None or plan[spec["name"]]["action"] == "none" or MANAGED_LABEL in (facts.get("labels") or {}):
                continue
            if self.adopted_data(spec, facts):
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

    def status(self, audit_log: str) -> list:
        """Where each tenant stands (the fleet page), readiness judged as the transaction judges it."""
        return host_status(self.engine, self.specs, audit_log, self.settings.snapshot_exclude, self._answers_health)

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

    def _image_versions(self) -> None:
        """The version each image declares (its version label), which a ready container must report."""
        if not self.settings.version_label:
            return
        for image in sorted({spec["image"] for spec in self.specs}):
            labels = self.engine.image_labels(image)
            self._expected_versions[image] = labels.get(self.settings.version_label) if labels else None

    def _check_space(self, pending: list, restores: dict, adoptions: dict) -> None:
        """Refuse (before anything stops) when the snapshots, restores and adopted copies would not fit.

        ``adoptions``: tenant name -> the legacy data folder copied into its data folder (then snapshotted).
        """
        needs: dict = {}

        def need(path: str, size: int, what: str) -> None:
            entry = needs.setdefault(os.stat(path).st_dev, {"path": path, "bytes": SPACE_MARGIN_BYTES, "tenants": []})
            entry["bytes"] += size
            entry["tenants"].append(f"{what} {human(size)}")

        for spec in pending:
            source = adoptions.get(spec["name"])
            if source and os.path.isdir(source):
                copy = data_size(source)
                need(os.path.dirname(spec["data_dir"]), copy, f"{spec['name']} (its adopted copy)")
                size = data_size(source, self.settings.snapshot_exclude)
            else:
                size = data_size(spec["data_dir"], self.settings.snapshot_exclude)
            if spec["name"] in restores:
                size += data_size(spec["data_dir"])  # the restored copy sits beside the data set aside
            need(spec["snapshot_dir"], size, spec["name"])
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


def _describe(facts: Optional[dict]) -> str:
    if facts is None:
        return "(no container)\n"
    return f"image: {facts['image']}\ndigest: {facts.get('digest')}\nstatus: {facts['status']}\n"
