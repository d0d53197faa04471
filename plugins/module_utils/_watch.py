# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The post-release watch: the tenants a rollout changed, watched for a while for what the health gate cannot see.

The transaction's health gate passes a tenant the moment it is ready; a release that fails a minute later (a worker
that dies under the first real requests, a job that runs after start) is only seen by watching. Each poll, per
tenant: its container (gone, replaced, not running, restarted more than allowed, health gone from healthy), its log
lines since the last poll (a line matching an error pattern), and its nginx access log since the watch began (more
5xx answers than allowed). What it cannot see: a slow leak over days, an error the app never logs, a page that
answers 200 with the wrong content.
"""

from __future__ import annotations

import calendar
import os
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

# A Python traceback, a CRITICAL line, the kernel's or the runtime's "out of memory".
DEFAULT_ERROR_PATTERNS = (r"Traceback \(most recent call last\)", r"\bCRITICAL\b", r"(?i)\bout of memory\b")
MAX_WATCH_MINUTES = 24 * 60
MAX_LOG_READ = 8 * 1024 * 1024  # of an access log per poll: a flood of requests is not read whole
# nginx's combined format: address - user [time] "request" status ...
ACCESS_LINE_RE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "((?:[^"\\]|\\.)*)" (\d{3}) ')


class WatchEngine(Protocol):
    """What the watch reads of the engine (``_engine.DockerEngine``; a fake in unit tests)."""

    def container(self, name: str) -> Optional[dict]:
        """container_facts (id, status, health, restart_count, exit_code), None when there is none."""

    def log_lines_since(self, container: str, since: float) -> list:
        """[(timestamp, line)] the container logged since ``since`` (epoch seconds), oldest first; the timestamps
        are Docker's (RFC 3339, nanoseconds), compared as :func:`log_time` reads them."""


@dataclass(frozen=True)
class WatchRules:
    error_patterns: tuple = DEFAULT_ERROR_PATTERNS
    max_restarts: int = 0
    max_server_errors: int = 5


def pattern_problems(patterns: object) -> list:
    """One line per error pattern that is not a regular expression."""
    if not isinstance(patterns, (list, tuple)):
        return [f"error_patterns must be a list of regular expressions, got {type(patterns).__name__}"]
    problems = []
    for index, pattern in enumerate(patterns):
        try:
            re.compile(str(pattern))
        except re.error as exc:
            problems.append(f"error_patterns[{index}] {pattern!r} is not a regular expression ({exc})")
    return problems


def log_time(stamp: str) -> tuple:
    """Docker's ``2026-12-03T17:10:00.12345Z`` as a sortable (seconds part, nanoseconds) pair."""
    whole, _dot, fraction = stamp.rstrip("Z").partition(".")
    return whole, int((fraction + "000000000")[:9]) if fraction.isdigit() else 0


@dataclass
class Watched:
    """One tenant under watch: what it was at the start, what has been seen since."""

    name: str
    container: str
    access_log: Optional[str] = None
    container_id: Optional[str] = None
    restarts_at_start: int = 0
    healthy_at_start: bool = False
    log_offset: int = 0
    log_partial: bytes = b""
    last_log: Optional[tuple] = None
    restarts: int = 0
    health_drops: int = 0
    error_lines: int = 0
    server_errors: int = 0
    last_health: Optional[str] = None
    breaches: list = field(default_factory=list)

    def breach(self, phrase: str) -> None:
        if phrase not in self.breaches:
            self.breaches.append(phrase)

    def summary(self) -> dict:
        return {"container": self.container, "restarts": self.restarts, "health_drops": self.health_drops,
                "error_lines": self.error_lines, "server_errors": self.server_errors,
                "breaches": list(self.breaches)}  # fmt: skip


class Watch:
    """Poll the watched tenants until the time is over (or, by default, until one breaches)."""

    def __init__(self, engine: WatchEngine, tenants: list, rules: WatchRules, clock: Callable = time.monotonic,
                 sleep: Callable = time.sleep, wall_clock: Callable = time.time) -> None:  # fmt: skip
        self.engine = engine
        self.tenants = [Watched(name, container, access_log) for name, container, access_log in tenants]
        self.rules = rules
        self.patterns = [re.compile(p) for p in rules.error_patterns]
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.started_wall = 0.0

    def start(self) -> None:
        """What each tenant is now: the baseline the polls compare with."""
        self.started_wall = self.wall_clock()
        for tenant in self.tenants:
            facts = self.engine.container(tenant.container)
            if facts is None:
                tenant.breach(f"its container {tenant.container} is gone")
                continue
            tenant.container_id = facts.get("id")
            tenant.restarts_at_start = int(facts.get("restart_count") or 0)
            tenant.healthy_at_start = facts.get("health") == "healthy"
            tenant.last_health = facts.get("health")
            if tenant.access_log:
                try:
                    tenant.log_offset = os.path.getsize(tenant.access_log)
                except OSError:
                    tenant.log_offset = 0  # not written yet: every line it gets counts

    def poll(self) -> None:
        for tenant in self.tenants:
            self._poll_container(tenant)
            self._poll_logs(tenant)
            self._poll_access_log(tenant)

    def _poll_container(self, tenant: Watched) -> None:
        facts = self.engine.container(tenant.container)
        if facts is None:
            tenant.breach(f"its container {tenant.container} is gone")
            return
        if tenant.container_id and facts.get("id") != tenant.container_id:
            tenant.breach(f"its container {tenant.container} was replaced by another during the watch")
            return
        tenant.restarts = int(facts.get("restart_count") or 0) - tenant.restarts_at_start
        if tenant.restarts > self.rules.max_restarts:
            tenant.breach(f"restarted {tenant.restarts} time(s) since the rollout (at most {self.rules.max_restarts})")
        if facts.get("status") != "running":
            tenant.breach(f"{facts.get('status')} (exit code {facts.get('exit_code')})")
        health = facts.get("health")
        if tenant.healthy_at_start and health != "healthy" and tenant.last_health == "healthy":
            tenant.health_drops += 1
            tenant.breach(f"its health went from healthy to {health or 'none'}")
        tenant.last_health = health

    def _poll_logs(self, tenant: Watched) -> None:
        since = self.started_wall if tenant.last_log is None else max(self.started_wall, _seconds_floor(tenant))
        for stamp, line in self.engine.log_lines_since(tenant.container, since):
            key = log_time(stamp)
            if tenant.last_log is not None and key <= tenant.last_log:
                continue  # read at the last poll (Docker's "since" has whole-second steps)
            tenant.last_log = key
            for pattern in self.patterns:
                if pattern.search(line):
                    tenant.error_lines += 1
                    tenant.breach(f"logged a line matching {pattern.pattern!r}: {' '.join(line.split())[:200]}")
                    break

    def _poll_access_log(self, tenant: Watched) -> None:
        if not tenant.access_log:
            return
        try:
            with open(tenant.access_log, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < tenant.log_offset:  # rotated: the new file is read from its beginning
                    tenant.log_offset, tenant.log_partial = 0, b""
                handle.seek(tenant.log_offset)
                chunk = handle.read(MAX_LOG_READ)
        except OSError:
            return
        tenant.log_offset += len(chunk)
        lines = (tenant.log_partial + chunk).split(b"\n")
        tenant.log_partial = lines.pop()
        example = None
        for raw in lines:
            match = ACCESS_LINE_RE.match(raw.decode("utf-8", "replace"))
            if match and match.group(2).startswith("5"):
                tenant.server_errors += 1
                request = match.group(1).split(" ")
                example = f"{match.group(2)} for {request[1] if len(request) > 1 else match.group(1)}"
        if tenant.server_errors > self.rules.max_server_errors:
            phrase = (f"answered {tenant.server_errors} request(s) with 5xx through nginx (at most "
                      f"{self.rules.max_server_errors})")  # fmt: skip
            if not any(b.startswith("answered ") for b in tenant.breaches):
                tenant.breach(phrase + (f", e.g. {example}" if example else ""))

    def breached(self) -> bool:
        return any(t.breaches for t in self.tenants)

    def run(self, seconds: float, interval: float, stop_on_breach: bool = True) -> dict:
        """Watch for ``seconds``, polling every ``interval``; the breaches per tenant and what was seen."""
        self.start()
        begin = self.clock()
        deadline = begin + seconds
        polls = 0
        while not (stop_on_breach and self.breached()):
            now = self.clock()
            if now >= deadline:
                break
            self.sleep(min(interval, deadline - now))
            self.poll()
            polls += 1
        breaches = {t.name: list(t.breaches) for t in self.tenants if t.breaches}
        return {
            "breached": bool(breaches),
            "breaches": breaches,
            "summary": "; ".join(f"{name}: {'; '.join(found)}" for name, found in breaches.items()),
            "watched_seconds": round(self.clock() - begin, 1),
            "polls": polls,
            "tenants": {t.name: t.summary() for t in self.tenants},
        }


def _seconds_floor(tenant: Watched) -> float:
    """Epoch seconds of the last log line read, whole (Docker's ``since`` counts in seconds)."""
    whole = tenant.last_log[0] if tenant.last_log else ""
    try:
        return float(calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return 0.0
