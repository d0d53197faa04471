# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where each tenant of a host stands, for the fleet page: what runs, its health, its snapshots, its last change.

Read-only. The last change comes from the tail of the host's audit log (one JSON line per tenant change).
"""

from __future__ import annotations

import json
import os
import re
from typing import Callable, Optional

from ansible_collections.pinned.release.plugins.module_utils._snapshots import TenantData

AUDIT_TAIL_BYTES = 256 * 1024
# A version label shown as the app's version: one short word (0.12.4, v0.6.5, 2.0.0-rc.1+build.7, main). Anything else
# (empty: a build argument left unset; a sentence, markup, several lines) declares no version.
VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}")


def image_version(image_labels: Optional[dict], version_label: Optional[str]) -> Optional[str]:
    """The version an image declares in the app's version label (``org.opencontainers.image.version`` for Open
    WebUI), or None: no such label, or one that does not read as a version."""
    value = (image_labels or {}).get(version_label) if version_label else None
    if not isinstance(value, str) or not VERSION_RE.fullmatch(value.strip()):
        return None
    return value.strip()


def last_changes(audit_log: str, tail_bytes: int = AUDIT_TAIL_BYTES) -> dict:
    """``{tenant: record}``: the newest audit record of each tenant in the last ``tail_bytes`` of the log."""
    try:
        with open(audit_log, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - tail_bytes))
            chunk = log.read()
    except OSError:
        return {}
    lines = chunk.splitlines()
    if size > tail_bytes and lines:
        lines = lines[1:]  # the first line may be cut
    latest = {}
    for raw in lines:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("tenant"):
            latest[record["tenant"]] = record
    return latest


def _snapshot_summary(snapshots: list) -> dict:
    if not snapshots:
        return {"count": 0, "newest_at": None, "oldest_at": None}
    return {
        "count": len(snapshots),
        "newest_at": snapshots[-1].get("taken_at"),
        "oldest_at": snapshots[0].get("taken_at"),
    }


def host_status(engine, specs: list, audit_log: str, snapshot_exclude: tuple = (),
                answers_health: Optional[Callable] = None, known: Optional[dict] = None,
                version_label: Optional[str] = None) -> list:  # fmt: skip
    """One entry per declared tenant: container state, the app version its image declares, snapshots and the last
    recorded change.

    Docker's health lags behind its healthcheck interval: a tenant Docker still calls ``starting`` whose app answers
    its health check (``answers_health(spec, facts)``) is healthy, as the transaction itself judges readiness.
    ``known``: {tenant: facts} just looked at (tenants a run left unchanged), not inspected again.
    ``version_label``: the image label that holds the app's version (the app profile's ``version_label``).
    """
    changes = last_changes(audit_log)
    status = []
    for spec in specs:
        try:
            facts: Optional[dict] = (known or {}).get(spec["name"]) or engine.container(spec["container"])
            if facts and facts["status"] == "running" and facts["health"] == "starting" and answers_health:
                facts = dict(facts, health="healthy" if answers_health(spec, facts) else "starting")
        except Exception as exc:  # an engine that fails to answer for one tenant is that tenant's status
            facts = {"image": None, "digest": None, "status": f"unknown ({' '.join(str(exc).split())[:120]})",
                     "health": None, "started_at": None}  # fmt: skip
        change = changes.get(spec["name"]) or {}
        status.append({
            "name": spec["name"],
            "container": spec["container"],
            "domain": spec["domain"],
            "image": facts["image"] if facts else None,
            "digest": facts["digest"] if facts else None,
            "version": image_version(facts.get("image_labels"), version_label) if facts else None,
            "status": facts["status"] if facts else "absent",
            "health": facts["health"] if facts else None,
            "started_at": facts.get("started_at") if facts else None,
            "finished_at": facts.get("finished_at") if facts else None,
            "snapshots": _snapshot_summary(TenantData(spec["name"], spec["dir"], snapshot_exclude).snapshots()),
            "last_change": {key: change.get(key) for key in ("time", "operator", "reason", "result", "from", "to")}
            if change else None,
        })  # fmt: skip
    return status
