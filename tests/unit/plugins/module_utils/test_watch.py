# SPDX-License-Identifier: GPL-3.0-or-later
"""The post-release watch on a scripted engine: what breaches, what does not, and that nothing is counted twice or
missed (lines Docker sends again or out of order, logs rotated, secrets in what is shown)."""

from __future__ import annotations

import calendar
import time

import pytest

from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.module_utils._watch import (
    Watch,
    WatchRules,
    docker_log_lines,
    pattern_problems,
    stamp_ns,
)

START = 1_796_000_000.0  # the wall clock when the watch starts
SECRET = "correct  horse\tbattery staple"


def stamp(epoch: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch)))
    return f"{whole}.{round((epoch - int(epoch)) * 1e9):09d}Z"


class Scripted:
    """An engine whose container changes as the script says, before the poll of that number (1 is the first)."""

    def __init__(self, script: dict, log_file=None) -> None:
        self.now = 0.0
        self.polls = 0
        self.script = script
        self.log_file = log_file
        self.containers = {"openwebui-acme": {"id": "c1", "status": "running", "health": "healthy",
                                              "restart_count": 0, "exit_code": 0}}  # fmt: skip
        self.logs = [(stamp(START - 0.7), "Traceback (most recent call last): from the rollout, before the watch")]
        self.since_asked = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return START + self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.polls += 1
        for change in self.script.get(self.polls, []):
            change(self)

    def container(self, name: str):
        facts = self.containers.get(name)
        return dict(facts, name=name) if facts else None

    def log_lines_since(self, container: str, since: float) -> list:
        """What Docker sends: every line from the whole second of ``since`` on, in the order they were written."""
        self.since_asked.append(since)
        return [
            (s, line)
            for s, line in self.logs
            if calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) >= int(since)
        ]


def log(line: str, ago: float = 0.5):
    def change(engine):
        engine.logs.append((stamp(START + engine.now - ago), line))

    return change


def facts(**changes):
    def change(engine):
        engine.containers["openwebui-acme"].update(changes)

    return change


def gone(engine):
    engine.containers.clear()


def access(*statuses, user="-", path="/api/chat"):
    def change(engine):
        with open(engine.log_file, "a") as handle:
            for status in statuses:
                handle.write(
                    f'127.0.0.1 - {user} [03/Dec/2026:17:00:00 +0000] "GET {path} HTTP/1.1" {status} 12 "-" "curl"\n'
                )

    return change


DEFAULT_RULES = WatchRules()


def watch(engine, rules=DEFAULT_RULES, access_log=None, mask=None) -> Watch:
    return Watch(engine, [("acme", "openwebui-acme", access_log)], rules, clock=engine.clock, sleep=engine.sleep,
                 wall_clock=engine.wall, mask=mask or (lambda text: text))  # fmt: skip


RESTARTED = "restarted 1 time(s) since the rollout started it (at most 0)"


@pytest.mark.parametrize(
    ("script", "rules", "breach", "polls"),
    [
        ({}, DEFAULT_RULES, None, 6),
        ({2: [log("INFO all good"), log("WARNING slow answer")]}, DEFAULT_RULES, None, 6),
        ({3: [facts(restart_count=1)]}, DEFAULT_RULES, RESTARTED, 3),
        ({3: [facts(restart_count=1)]}, WatchRules(max_restarts=1), None, 6),
        ({2: [facts(status="exited", exit_code=137)]}, DEFAULT_RULES, "exited (exit code 137)", 2),
        (
            {2: [facts(health="unhealthy")], 3: [facts(health="healthy")]},
            DEFAULT_RULES,
            "its health went from healthy to unhealthy",
            2,
        ),
        (
            {4: [facts(id="c2")]},
            DEFAULT_RULES,
            "its container openwebui-acme was replaced by another during the watch",
            4,
        ),
        ({1: [gone]}, DEFAULT_RULES, "its container openwebui-acme is gone", 1),
        (
            {2: [log("CRITICAL worker pool died: pid 7")]},
            DEFAULT_RULES,
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
    if breach is None:
        assert result["breaches"] == {}
    else:
        assert breach in result["breaches"]["acme"], result["breaches"]
    assert result["polls"] == polls, "it stops at the first breach, else polls until the time is over"


def test_a_tenant_docker_does_not_call_healthy_yet_breaches_when_it_turns_unhealthy():
    engine = Scripted({2: [facts(health="healthy")], 4: [facts(health="unhealthy")]})
    engine.containers["openwebui-acme"]["health"] = "starting"  # the app answered: the transaction went on
    result = watch(engine).run(seconds=60, interval=10)
    assert result["breaches"]["acme"][0] == "its health check reports unhealthy"
    assert result["polls"] == 4


def test_a_tenant_unhealthy_for_the_whole_watch_breaches_at_once():
    engine = Scripted({})
    engine.containers["openwebui-acme"]["health"] = "unhealthy"
    result = watch(engine).run(seconds=60, interval=10)
    assert result["breaches"]["acme"] == ["its health check reports unhealthy"]
    assert result["polls"] == 0


def test_a_restart_between_the_tenants_start_and_the_watch_counts():
    engine = Scripted({})
    engine.containers["openwebui-acme"]["restart_count"] = 1  # crashed while the host's other tenants were replaced
    assert watch(engine).run(seconds=60, interval=10)["breaches"]["acme"] == [RESTARTED]


def test_a_log_line_is_read_once_though_dockers_since_counts_whole_seconds():
    engine = Scripted({2: [log("Traceback (most recent call last): boom")]})
    result = watch(engine).run(seconds=60, interval=10, stop_on_breach=False)
    assert result["tenants"]["acme"]["error_lines"] == 1, "the line before the watch is not the release's; no twice"
    assert result["polls"] == 6
    assert result["watched_seconds"] == 60


def test_a_stderr_line_written_before_a_stdout_line_it_follows_is_still_read():
    engine = Scripted(
        {2: [log("INFO request done", ago=0.1)], 3: [log("Traceback (most recent call last): late", ago=10.4)]}
    )
    result = watch(engine).run(seconds=60, interval=10)
    assert result["tenants"]["acme"]["error_lines"] == 1, "Docker gives stdout and stderr in write order, not by time"


@pytest.mark.parametrize(
    ("stamps", "same"),
    [
        (("2026-12-03T18:10:00.100000000+01:00", "2026-12-03T17:10:00.1Z"), True),
        (("2026-12-03T17:10:00.1Z", "2026-12-03T17:10:00.12Z"), False),
        (("2026-12-03T17:10:00Z", "2026-12-03T17:10:00.000000000Z"), True),
    ],
)
def test_docker_timestamps_are_read_as_times_whatever_their_zone(stamps, same):
    first, second = (stamp_ns(s) for s in stamps)
    assert (first == second) is same
    assert stamp_ns("Fetching") is None


def test_dockers_output_is_split_on_newlines_only_a_carriage_return_stays_in_its_line():
    raw = (b"2026-12-03T17:10:01.100000000Z Fetching 30 files:  10%|#  | 3/30\rFetching 30 files: 100%|###| 30/30\n"
           b"2026-12-03T17:10:02.000000000Z CRITICAL worker died\n")  # fmt: skip
    assert docker_log_lines(raw) == [
        ("2026-12-03T17:10:01.100000000Z", "Fetching 30 files:  10%|#  | 3/30\rFetching 30 files: 100%|###| 30/30"),
        ("2026-12-03T17:10:02.000000000Z", "CRITICAL worker died"),
    ]
    engine = Scripted(
        {2: [lambda e: e.logs.extend((stamp(START + e.now - 0.5), text) for _s, text in docker_log_lines(raw))]}
    )
    assert watch(engine).run(seconds=60, interval=10)["tenants"]["acme"]["error_lines"] == 1


def test_a_secret_in_a_log_line_is_masked_before_the_line_is_shortened():
    mask = SecretMask([SECRET]).text
    line = "CRITICAL cannot decrypt with " + "x" * 150 + SECRET + " (the secret straddles the cut at 200)"
    result = watch(Scripted({1: [log(line)]}), mask=mask).run(seconds=30, interval=10)
    (phrase,) = result["breaches"]["acme"]
    assert "correct" not in phrase
    assert "staple" not in phrase


def test_5xx_answers_through_nginx_breach_past_the_allowance_counting_only_what_came_after_the_start(tmp_path):
    access_log = tmp_path / "pinned-release-acme.access.log"
    engine = Scripted({2: [access(200, 502, 503)], 3: [access(500, 200, 504, path="/api/hook?token=s3cr3t")]},
                      log_file=access_log)  # fmt: skip
    access(500, 500, 500, 500)(engine)  # before the watch began: not this release's doing
    result = watch(engine, WatchRules(max_server_errors=3), str(access_log)).run(seconds=60, interval=10)
    assert result["breaches"] == {
        "acme": ["answered 4 request(s) with 5xx through nginx (at most 3), e.g. 504 for /api/hook"]
    }
    assert result["polls"] == 3


def test_exactly_the_allowed_5xx_is_no_breach_and_a_user_name_with_a_space_is_still_counted(tmp_path):
    access_log = tmp_path / "acme.access.log"
    engine = Scripted({1: [access(500, 502, user="ann marie")], 2: [access(503)]}, log_file=access_log)
    access_log.write_text("")
    result = watch(engine, WatchRules(max_server_errors=3), str(access_log)).run(seconds=30, interval=10)
    assert result["breached"] is False
    assert result["tenants"]["acme"]["server_errors"] == 3


def test_a_line_split_across_two_polls_is_counted_once(tmp_path):
    access_log = tmp_path / "acme.access.log"
    access_log.write_text("")
    line = '127.0.0.1 - - [03/Dec/2026:17:00:00 +0000] "GET / HTTP/1.1" 502 12 "-" "curl"\n'

    def write(text):
        return lambda engine: access_log.open("a").write(text)

    engine = Scripted({1: [write(line[:30])], 2: [write(line[30:])]}, log_file=access_log)
    result = watch(engine, WatchRules(max_server_errors=0), str(access_log)).run(seconds=30, interval=10)
    assert result["tenants"]["acme"]["server_errors"] == 1


def test_an_access_log_rotated_during_the_watch_is_read_to_its_end_then_the_new_one_from_its_beginning(tmp_path):
    access_log = tmp_path / "acme.access.log"
    engine = Scripted({}, log_file=access_log)
    access(200, 200, 200, 200, 200)(engine)

    def rotate(engine):
        access(502, 502)(engine)  # written just before the rotation, in the old file
        access_log.rename(tmp_path / "acme.access.log.1")
        access(200, 200, 200, 200, 200, 200, 502, 502, 502)(engine)  # the new file, already past the old offset

    engine.script = {2: [rotate]}
    result = watch(engine, WatchRules(max_server_errors=10), str(access_log)).run(seconds=30, interval=10)
    assert result["tenants"]["acme"]["server_errors"] == 5


def test_a_tenant_with_no_access_log_yet_counts_every_line_it_gets_and_none_at_all_says_so(tmp_path):
    access_log = tmp_path / "new.access.log"
    engine = Scripted({1: [access(502)]}, log_file=access_log)
    result = watch(engine, WatchRules(max_server_errors=0), str(access_log)).run(seconds=30, interval=10)
    assert result["breaches"]["acme"][0].startswith("answered 1 request(s) with 5xx")
    unlogged = watch(Scripted({})).run(seconds=10, interval=10)
    assert unlogged["not_counted"] == {"acme": "it has no access log of its own (tenant_nginx_access_log_dir is empty)"}
    assert unlogged["tenants"]["acme"]["server_errors"] is None


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


def test_an_access_log_truncated_in_place_is_read_again_from_its_beginning(tmp_path):
    access_log = tmp_path / "acme.access.log"
    engine = Scripted({}, log_file=access_log)
    access(200, 200, 200, 200, 200, 200)(engine)

    def copytruncate(engine):
        access_log.write_text("")  # logrotate's copytruncate: same file, emptied
        access(502, 502, 502)(engine)

    engine.script = {2: [copytruncate]}
    result = watch(engine, WatchRules(max_server_errors=10), str(access_log)).run(seconds=30, interval=10)
    assert result["tenants"]["acme"]["server_errors"] == 3


class TwoTenants(Scripted):
    """Inspecting globex takes 3 s; acme logs a traceback in that time, just after its own logs were read."""

    def __init__(self) -> None:
        super().__init__({})
        self.containers["openwebui-globex"] = dict(self.containers["openwebui-acme"], id="c2")

    def container(self, name: str):
        if name == "openwebui-globex" and self.polls == 2:
            self.now += 3
            self.logs.append(
                (stamp(START + self.now - 2.5), "Traceback (most recent call last): while globex was polled")
            )
        return super().container(name)

    def log_lines_since(self, container: str, since: float) -> list:
        return super().log_lines_since(container, since) if container == "openwebui-acme" else []


def test_a_line_logged_while_the_other_tenants_are_polled_is_not_missed():
    engine = TwoTenants()
    tenants = [("acme", "openwebui-acme", None), ("globex", "openwebui-globex", None)]  # acme read first
    result = Watch(engine, tenants, DEFAULT_RULES, clock=engine.clock, sleep=engine.sleep, wall_clock=engine.wall).run(
        seconds=60, interval=10
    )
    assert result["tenants"]["acme"]["error_lines"] == 1
