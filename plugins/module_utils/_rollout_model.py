# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the release transaction works with: its settings, one tenant's move in this run, its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._rollout_record import MoveRecord
from ansible_collections.pinned.release.plugins.module_utils._settings import default
from ansible_collections.pinned.release.plugins.module_utils._snapshots import TenantData

NEXT_SUFFIX = ".pinned-next"
PREV_SUFFIX = ".pinned-prev"


def own_containers(container: str) -> set:
    """A tenant's container and the ones a move makes of it (the new one before the swap, the previous one after)."""
    return {container, container + NEXT_SUFFIX, container + PREV_SUFFIX}


class RolloutError(Exception):
    """The transaction refuses to start or cannot go on; nothing was left half-done."""


class SimulatedCrash(BaseException):  # it stands for a process dying, not an error
    """Raised by a unit test's failpoint: the process 'dies' at a journal write or an engine call."""


@dataclass
class Settings:
    """What one run works with: the declared settings (their defaults from _settings.py), the app profile's parts."""

    batch_size: int = default("batch_size")
    health_timeout: float = float(default("health_timeout"))
    snapshot_keep: int = default("snapshot_keep")
    aside_keep: int = default("aside_keep")
    protect_digests: tuple = ()
    restore_data_on_failure: bool = default("restore_data_on_failure")
    data_mode: str = default("data_mode")  # data_mode and failure_scope: what each choice means is in _settings.py
    restore_snapshots: dict = field(default_factory=dict)
    remove_undeclared: bool = default("remove_undeclared")
    failure_scope: str = default("failure_scope")
    smoke_checks: list = field(default_factory=list)
    isolation_allow: tuple = ()  # containers allowed to mount the tenants' folders (a monitoring agent)
    tls_min_days: int = default("tls_min_days")
    health_path: Optional[str] = "/health"
    health_json: dict = field(default_factory=dict)
    version_path: Optional[str] = None
    version_key: str = "version"
    version_label: Optional[str] = None
    snapshot_exclude: tuple = ()
    nginx_enabled: bool = default("nginx.enabled")
    nginx_http_port: int = default("nginx.http_port")
    nginx_https_port: int = default("nginx.https_port")
    nginx_default_server: bool = default("nginx.default_server")
    nginx_access_log_dir: str = default("nginx.access_log_dir")
    log_lines: int = default("log_lines")


@dataclass
class Move:
    """One tenant's change in this run: its spec, its journal record and what this process knows besides."""

    spec: dict
    record: MoveRecord
    data: TenantData
    site: Optional[str] = None  # the site content to switch to once ready
    failure: Optional[str] = None
    logs: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    restore_meta: Optional[dict] = None  # the snapshot to restore before the target starts
    retry_meta: Optional[dict] = None  # data_mode auto: the snapshot to restore if the target fails on the data
    adopt_source: Optional[str] = None  # adopt_from.data when the container replaced is the hand-started one

    @property
    def name(self) -> str:
        return self.record.tenant


def transaction_settings(values: dict, app: dict) -> Settings:
    """The Settings of a run from the settings keyed as ``_settings.Setting.key`` and the merged app profile."""
    return Settings(
        batch_size=values["batch_size"],
        health_timeout=float(values["health_timeout"]),
        snapshot_keep=values["snapshot_keep"],
        aside_keep=values["aside_keep"],
        protect_digests=tuple(d for d in values["protect_digests"] if d),
        restore_data_on_failure=values["restore_data_on_failure"],
        data_mode=values["data_mode"],
        restore_snapshots=dict(values["restore_snapshots"] or {}),
        remove_undeclared=values["remove_undeclared"],
        failure_scope=values["failure_scope"],
        smoke_checks=list(values["smoke_checks"] or []),
        isolation_allow=tuple(values["isolation_allow"] or ()),
        tls_min_days=values["tls_min_days"],
        health_path=app.get("health_path") or None,
        health_json=dict(app.get("health_json") or {}),
        version_path=app.get("version_path") or None,
        version_key=app.get("version_key") or "version",
        version_label=app.get("version_label") or None,
        snapshot_exclude=tuple(app.get("snapshot_exclude") or ()),
        nginx_enabled=values["nginx.enabled"],
        nginx_http_port=values["nginx.http_port"],
        nginx_https_port=values["nginx.https_port"],
        nginx_default_server=values["nginx.default_server"],
        nginx_access_log_dir=values["nginx.access_log_dir"] or "",
        log_lines=values["log_lines"],
    )
