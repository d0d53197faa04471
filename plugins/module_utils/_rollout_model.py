# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the release transaction works with: its settings, one tenant's move in this run, its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._rollout_record import MoveRecord
from ansible_collections.pinned.release.plugins.module_utils._snapshots import TenantData

NEXT_SUFFIX = ".pinned-next"
PREV_SUFFIX = ".pinned-prev"


class RolloutError(Exception):
    """The transaction refuses to start or cannot go on; nothing was left half-done."""


class SimulatedCrash(BaseException):  # it stands for a process dying, not an error
    """Raised by a unit test's failpoint: the process 'dies' at a journal write or an engine call."""


@dataclass
class Settings:
    batch_size: int = 1
    health_timeout: float = 120.0
    snapshot_keep: int = 5
    aside_keep: int = 2
    protect_digests: tuple = ()
    restore_data_on_failure: bool = True
    # current: run on the data as it is; auto: restore the data from before the tenant last left the target when
    # it is on the version that snapshot was taken for (an emergency rollback), else try the current data and
    # restore if the target fails on it; restore: restore that data first.
    data_mode: str = "current"
    restore_snapshots: dict = field(default_factory=dict)
    remove_undeclared: bool = False
    # batch: a failure puts the tenant's whole batch back and the run stops there (a rollout);
    # tenant: only the failing tenant is put back, the others go on (a rollback: never back to what is rolled away from)
    failure_scope: str = "batch"
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
