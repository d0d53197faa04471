# SPDX-License-Identifier: GPL-3.0-or-later
"""The post-release watch on a scripted engine: what breaches, what does not, and that nothing is counted twice."""

from __future__ import annotations

import calendar
import time

import pytest

from ansible_collections.pinned.release.plugins.module_utils._watch import (
    Watch,
    WatchRules,
    log_time,
    pattern_problems,
)

START = 1_796_000_000.0  # the wall clock when the watch starts


def stamp(epoch: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch)))
    return f"{whole}.{round((epoch - int(epoch)) * 1e9):09d}Z"


class Scripted:
    """An engine whose containers change as the script says, before the poll of that number (1 is the first)."""

    def __init__(self, script: dict, log_file=None) -> None:
        self.now = 0.0
        self.polls = 0
        self.script = script
        self.log_file = log_file
        self.containers = {"openwebui-acme": {"id": "c1", "status": "running", "health": "healthy",
                                              "restart_count": 2, "exit_code": 0}}  # fmt: skip
        self.logs = [(stamp(START - 30), "Traceback (most recent call last): from before the rollout")]
        self.since_asked = []

    # the clock and sleep the watch is given
    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return START + self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.polls += 1
        for change in self.script.get(self.polls, []):
            change(self)

    # WatchEngine
    def container(self, name: str):
        facts = self.containers.get(name)
        return dict(facts, name=name) if facts else None

    def log_lines_since(self, container: str, since: float) -> list:
        self.since_asked.append(since)
        return [
            (s, line)
            for s, line in self.logs
            if calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) >= int(since)
        ]


def log(line: str):
    def change(engine):
        engine.logs.append((stamp(START + engine.now - 0.5), line))

    return change


def facts(**changes):
    def change(engine):
        engine.containers["openwebui-acme"].update(changes)

    return change


def gone(engine):
    engine.containers.clear()


def access(*statuses):
    def change(engine):
        with open(engine.log_file, "a") as handle:
            for status in statuses:
                handle.write(
                    f'127.0.0.1 - - [03/Dec/2026:17:00:00 +0000] "GET /api/chat HTTP/1.1" {status} 12 "-" "curl"\n'
                )

    return change


DEFAULT_RULES = WatchRules()


def watch(engine, rules=DEFAULT_RULES, access_log=None) -> Watch:
    return Watch(engine, [("acme", "openwebui-acme", access_log)], rules, clock=engine.clock, sleep=engine.sleep,
                 wall_clock=engine.wall)  # fmt: skip


@pytest.mark.parametrize(
    ("script", "rules", "breach", "polls"),
    [
        ({}, WatchRules(), None, 6),
        ({2: [log("INFO all good"), log("WARNING slow answer")]}, WatchRules(), None, 6),
        ({3: [facts(restart_count=3)]}, WatchRules(), "restarted 1 time(s) since the rollout (at most 0)", 3),
        ({3: [facts(restart_count=3)]}, WatchRules(max_restarts=1), None, 6),
        ({2: [facts(status="exited", exit_code=137)]}, WatchRules(), "exited (exit code 137)", 2),
        (
            {2: [facts(health="unhealthy")], 3: [facts(health="healthy")]},
            WatchRules(),
            "its health went from healthy to unhealthy",
            2,
        ),
        (
            {4: [facts(id="c2")]},
            WatchRules(),
            "its container openwebui-acme was replaced by another during the watch",
            4,
        ),
        ({1: [gone]}, WatchRules(), "its container openwebui-acme is gone", 1),
        (
            {2: [log("CRITICAL worker pool died: pid 7")]},
            WatchRules(),
            "logged a line matching '\\\\bCRITICAL\\\\b': CRITICAL worker pool died: pid 7",
            2,
        ),
        (
            {2: [log("pipe save JSON error")]},
            WatchRules(error_patterns=("pipe save JSON error",)),
            "logged a line matching 'pipe save JSON error': pipe save JSON error",
            2,
        ),
    ],
)
def test_what_breaches_a_watch(script, rules, breach, polls):
    engine = Scripted(script)
    result = watch(engine, rules).run(seconds=60, interval=10)
    assert result["breached"] is (breach is not None)
    assert result["breaches"] == ({} if breach is None else {"acme": [breach]})
    assert result["polls"] == polls, "it stops at the first breach, else polls until the time is over"


def test_a_log_line_is_read_once_though_dockers_since_counts_whole_seconds():
    engine = Scripted({2: [log("Traceback (most recent call last): boom")]})
    result = watch(engine).run(seconds=60, interval=10, stop_on_breach=False)
    assert result["tenants"]["acme"]["error_lines"] == 1
    assert result["breaches"]["acme"] == ["logged a line matching 'Traceback \\\\(most recent call last\\\\)': "
                                          "Traceback (most recent call last): boom"]  # fmt: skip
    assert min(engine.since_asked) >= START, "lines from before the rollout are not the release's"
    assert result["polls"] == 6
    assert result["watched_seconds"] == 60


def test_5xx_answers_through_nginx_breach_past_the_allowance_counting_only_what_came_after_the_start(tmp_path):
    access_log = tmp_path / "pinned-release-acme.access.log"
    engine = Scripted({2: [access(200, 502, 503)], 3: [access(500, 200, 504)]}, log_file=access_log)
    access(500, 500, 500, 500)(engine)  # before the watch began: not this release's doing
    result = watch(engine, WatchRules(max_server_errors=3), str(access_log)).run(seconds=60, interval=10)
    assert result["breaches"] == {
        "acme": ["answered 4 request(s) with 5xx through nginx (at most 3), e.g. 504 for /api/chat"]
    }
    assert result["polls"] == 3


def test_an_access_log_rotated_during_the_watch_is_read_from_its_beginning(tmp_path):
    access_log = tmp_path / "acme.access.log"
    engine = Scripted({}, log_file=access_log)
    access(200, 200, 200, 200, 200)(engine)

    def rotate(engine):
        access_log.write_text("")
        access(502, 502)(engine)

    engine.script = {2: [rotate]}
    result = watch(engine, WatchRules(max_server_errors=1), str(access_log)).run(seconds=30, interval=10)
    assert result["tenants"]["acme"]["server_errors"] == 2


def test_a_tenant_with_no_access_log_yet_counts_every_line_it_gets(tmp_path):
    access_log = tmp_path / "new.access.log"
    engine = Scripted({1: [access(502)]}, log_file=access_log)
    result = watch(engine, WatchRules(max_server_errors=0), str(access_log)).run(seconds=30, interval=10)
    assert result["breaches"]["acme"][0].startswith("answered 1 request(s) with 5xx")


@pytest.mark.parametrize(
    ("patterns", "problem"),
    [
        (["Traceback", r"\bERROR\b"], None),
        (["(unclosed"], "error_patterns[0] '(unclosed' is not a regular expression"),
        ("Traceback", "error_patterns must be a list of regular expressions, got str"),
    ],
)
def test_error_patterns_are_regular_expressions(patterns, problem):
    problems = pattern_problems(patterns)
    assert problems == [] if problem is None else problem in problems[0]


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("2026-12-03T17:10:00.1Z", "2026-12-03T17:10:00.12Z"),
        ("2026-12-03T17:10:00.999999999Z", "2026-12-03T17:10:01.000000000Z"),
        ("2026-12-03T17:10:00Z", "2026-12-03T17:10:00.000000001Z"),
    ],
)
def test_docker_timestamps_sort_as_times(earlier, later):
    assert log_time(earlier) < log_time(later)
