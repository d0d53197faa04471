# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the release transaction works with: its settings, one tenant's move, a readiness probe, its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._snapshots import TenantData

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
    restarts: Optional[int] = None  # restarts before the wait (None: count from the first look)
