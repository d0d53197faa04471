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
from typing import BinaryIO, Callable, Optional, Protocol

# A Python traceback, a CRITICAL line, the kernel's or the runtime's "out of memory".
DEFAULT_ERROR_PATTERNS = (r"Traceback \(most recent call last\)", r"\bCRITICAL\b", r"(?i)\bout of memory\b")
MAX_WATCH_MINUTES = 24 * 60
MAX_LOG_READ = 8 * 1024 * 1024  # of an access log per poll: a flood of requests is not read whole
# nginx's combined format: address - user [time] "request" status ... (the user is any client's text: not parsed)
ACCESS_LINE_RE = re.compile(r'^.*? \[[^\]]*\] "((?:[^"\\]|\\.)*)" (\d{3}) ')
# Docker's log timestamp (RFC 3339, nanoseconds; Z, or an offset from older engines' local log driver)
STAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")
SEEN_WINDOW_NS = 5 * 10**9  # lines remembered this long, as Docker's "since" (whole seconds) sends some again


class WatchEngine(Protocol):
    """What the watch reads of the engine (``_engine.DockerEngine``; a fake in unit tests)."""

    def container(self, name: str) -> Optional[dict]:
        """container_facts (id, status, health, restart_count, exit_code), None when there is none."""

    def log_lines_since(self, container: str, since: float) -> list:
        """[(timestamp, line)] the container logged since ``since`` (epoch seconds, Docker rounds it down), in the
        order Docker gives them; the timestamps as Docker writes them (:func:`stamp_ns` reads them)."""


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


def stamp_ns(stamp: str) -> Optional[int]:
    """Docker's ``2026-12-03T17:10:00.12345Z`` (or ``+01:00``) as nanoseconds since the epoch; None if it is not one."""
    match = STAMP_RE.fullmatch(stamp)
    if not match:
        return None
    whole, fraction, zone = match.groups()
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    if zone != "Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    return seconds * 10**9 + int(((fraction or "") + "000000000")[:9])


def docker_log_lines(raw: bytes) -> list:
    """``docker logs --timestamps`` output as [(timestamp, line)]: one entry per newline; a piece without a timestamp
    of its own (a carriage return inside a line, a progress bar) belongs to the line before it."""
    lines: list = []
    for piece in raw.decode("utf-8", "replace").split("\n"):
        stamp, _space, text = piece.partition(" ")
        if stamp_ns(stamp) is not None:
            lines.append((stamp, text))
        elif lines and piece:
            lines[-1] = (lines[-1][0], lines[-1][1] + "\n" + piece)
    return lines


@dataclass
class Watched:
    """One tenant under watch: what it was at the start, what has been seen since."""

    name: str
    container: str
    access_log: Optional[str] = None
    container_id: Optional[str] = None
    log_handle: Optional[BinaryIO] = None
    log_partial: bytes = b""
    log_problem: Optional[str] = None
    seen: dict = field(default_factory=dict)  # (timestamp, line) -> its nanoseconds, for the lines sent again
    logs_read_at: float = 0.0  # wall time just before its logs were last asked for
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
                "error_lines": self.error_lines,
                "server_errors": None if self.log_problem else self.server_errors,
                "server_errors_not_counted": self.log_problem, "breaches": list(self.breaches)}  # fmt: skip


class Watch:
    """Poll the watched tenants until the time is over (or, by default, until one breaches).

    The tenants are the containers a rollout created: every restart since they were created counts, and a health
    check that reports unhealthy at any poll is a breach (the transaction passes a tenant once its app answers, which
    can be before Docker's own health check says healthy).
    """

    def __init__(self, engine: WatchEngine, tenants: list, rules: WatchRules, clock: Callable = time.monotonic,
                 sleep: Callable = time.sleep, wall_clock: Callable = time.time,
                 mask: Callable = lambda text: text) -> None:  # fmt: skip
        self.engine = engine
        self.tenants = [Watched(name, container, access_log) for name, container, access_log in tenants]
        self.rules = rules
        self.patterns = [re.compile(p) for p in rules.error_patterns]
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.mask = mask  # secret values out of a log line before it is shown (then it is shortened)
        self.started_ns = 0

    def start(self) -> None:
        """What each tenant is now: the baseline the polls compare with."""
        started = self.wall_clock()
        self.started_ns = int(started * 10**9)
        for tenant in self.tenants:
            tenant.logs_read_at = started
            facts = self.engine.container(tenant.container)
            if facts is None:
                tenant.breach(f"its container {tenant.container} is gone")
                continue
            tenant.container_id = facts.get("id")
            self._judge_container(tenant, facts)
            if tenant.access_log:
                self._open_access_log(tenant, at_end=True)
            else:
                tenant.log_problem = "it has no access log of its own (tenant_nginx_access_log_dir is empty)"

    def _open_access_log(self, tenant: Watched, at_end: bool) -> None:
        try:
            tenant.log_handle = open(tenant.access_log, "rb")  # noqa: SIM115 - kept open across polls, as tail -F
        except OSError as exc:
            tenant.log_handle = None
            tenant.log_problem = f"{tenant.access_log} cannot be read ({exc.strerror or exc})"
            return
        tenant.log_problem = None
        if at_end:
            tenant.log_handle.seek(0, os.SEEK_END)

    def close(self) -> None:
        for tenant in self.tenants:
            if tenant.log_handle is not None:
                tenant.log_handle.close()
                tenant.log_handle = None

    def poll(self) -> None:
        for tenant in self.tenants:
            facts = self.engine.container(tenant.container)
            if facts is None:
                tenant.breach(f"its container {tenant.container} is gone")
            elif tenant.container_id and facts.get("id") != tenant.container_id:
                tenant.breach(f"its container {tenant.container} was replaced by another during the watch")
            else:
                self._judge_container(tenant, facts)
            self._poll_logs(tenant)
            self._poll_access_log(tenant)

    def _judge_container(self, tenant: Watched, facts: dict) -> None:
        tenant.restarts = int(facts.get("restart_count") or 0)
        if tenant.restarts > self.rules.max_restarts:
            tenant.breach(f"restarted {tenant.restarts} time(s) since the rollout started it (at most "
                          f"{self.rules.max_restarts})")  # fmt: skip
        if facts.get("status") != "running":
            tenant.breach(f"{facts.get('status')} (exit code {facts.get('exit_code')})")
        health = facts.get("health")
        if health == "unhealthy":
            tenant.breach("its health check reports unhealthy")
        if tenant.last_health == "healthy" and health != "healthy":
            tenant.health_drops += 1
            tenant.breach(f"its health went from healthy to {health or 'none'}")
        tenant.last_health = health

    def _poll_logs(self, tenant: Watched) -> None:
        # From a second before this tenant's last read: Docker's "since" is whole seconds, and a line may be written late.
        since = max(self.started_ns / 10**9, tenant.logs_read_at - 1.0)
        tenant.logs_read_at = self.wall_clock()
        for stamp, line in self.engine.log_lines_since(tenant.container, since):
            at = stamp_ns(stamp)
            if at is None or at < self.started_ns or (stamp, line) in tenant.seen:
                continue  # from before the watch (the rollout's own start), or read at an earlier poll
            tenant.seen[(stamp, line)] = at
            for pattern in self.patterns:
                if pattern.search(line):
                    tenant.error_lines += 1
                    shown = " ".join(self.mask(line).split())
                    tenant.breach(f"logged a line matching {pattern.pattern!r}: {shown[:200]}")
                    break
        horizon = int(since * 10**9) - SEEN_WINDOW_NS
        tenant.seen = {key: at for key, at in tenant.seen.items() if at >= horizon}

    def _poll_access_log(self, tenant: Watched) -> None:
        if not tenant.access_log:
            return
        if tenant.log_handle is None:  # not there at the start: every line it gets since counts
            self._open_access_log(tenant, at_end=False)
            if tenant.log_handle is None:
                return
        if os.fstat(tenant.log_handle.fileno()).st_size < tenant.log_handle.tell():  # truncated in place (copytruncate)
            tenant.log_handle.seek(0)
            tenant.log_partial = b""
        chunk = tenant.log_handle.read(MAX_LOG_READ)
        try:
            rotated = os.stat(tenant.access_log).st_ino != os.fstat(tenant.log_handle.fileno()).st_ino
        except OSError:
            rotated = False  # moved away, not yet created again: the old file is read until it is
        if rotated:  # the rest of the old file is read above; the new one from its beginning
            tenant.log_handle.close()
            self._open_access_log(tenant, at_end=False)
            if tenant.log_handle is not None:
                chunk += b"\n" if chunk and not chunk.endswith(b"\n") else b""
                chunk += tenant.log_handle.read(MAX_LOG_READ)
        lines = (tenant.log_partial + chunk).split(b"\n")
        tenant.log_partial = lines.pop()
        example = None
        for raw in lines:
            match = ACCESS_LINE_RE.match(raw.decode("utf-8", "replace"))
            if match and match.group(2).startswith("5"):
                tenant.server_errors += 1
                request = match.group(1).split(" ")
                path = (request[1] if len(request) > 1 else "?").split("?", 1)[0]  # a query string can hold a token
                example = f"{match.group(2)} for {self.mask(path)}"
        if tenant.server_errors > self.rules.max_server_errors and not any(
            b.startswith("answered ") for b in tenant.breaches
        ):
            tenant.breach(f"answered {tenant.server_errors} request(s) with 5xx through nginx (at most "
                          f"{self.rules.max_server_errors})" + (f", e.g. {example}" if example else ""))  # fmt: skip

    def breached(self) -> bool:
        return any(t.breaches for t in self.tenants)

    def run(self, seconds: float, interval: float, stop_on_breach: bool = True) -> dict:
        """Watch for ``seconds``, polling every ``interval``; the breaches per tenant and what was seen."""
        try:
            return self._run(seconds, interval, stop_on_breach)
        finally:
            self.close()

    def _run(self, seconds: float, interval: float, stop_on_breach: bool) -> dict:
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
            "not_counted": {t.name: t.log_problem for t in self.tenants if t.log_problem},
        }
