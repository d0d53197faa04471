# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks: what each one asks, how an answer is judged, and how a checklist carries values from check to check."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.pinned.release.plugins.module_utils._checks import (
    check_outcome,
    check_problems,
    run_checks,
    tenant_address,
)
from ansible_collections.pinned.release.plugins.module_utils._http import Response


def answer(status=200, body="", content_type="application/json", events=()):
    return Response(status=status, headers={"content-type": content_type}, body=body.encode(), events=list(events))


@pytest.mark.parametrize(
    ("check", "response", "passed", "detail"),
    [
        ({"path": "/health", "json": {"status": True}}, answer(body='{"status": true}'), True, "HTTP 200"),
        ({"path": "/health", "json": {"status": True}}, answer(body='{"status": false}'), False, "JSON 'status' is false"),
        ({"path": "/c", "json": {"a": {"b": 1}}}, answer(body='{"a": {"b": 2, "c": 3}}'), False, "JSON 'a.b' is 2, expected 1"),
        ({"path": "/c", "json": {"a": {"b": 1}}}, answer(body='{"a": {"b": 1, "c": 3}}'), True, "HTTP 200"),
        ({"path": "/health"}, answer(503), False, "HTTP 503, expected 200"),
        ({"path": "/x", "status": 404}, answer(404), True, "HTTP 404"),
        ({"path": "/x", "status": "200"}, answer(200), True, "HTTP 200"),
        ({"path": "/x", "status": [200, 201]}, answer(201), True, "HTTP 201"),
        ({"path": "/x", "status": [200, 201]}, answer(500), False, "HTTP 500, expected 200 or 201"),
        ({"path": "/v", "json_keys": ["version"]}, answer(body='{"v": 1}'), False, "JSON lacks version"),
        ({"path": "/v", "json": {}}, answer(body="<html>"), False, "body is not JSON"),
        ({"path": "/s", "contains": "[DONE]"}, answer(body="data: 1"), False, "does not contain"),
        ({"path": "/s", "content_type": "text/event-stream"}, answer(content_type="text/html"), False, "content type text/html"),
        ({"path": "/s", "content_type": "text/event-stream"}, answer(content_type="text/event-stream; charset=utf-8"), True, "HTTP 200"),
        ({"path": "/h"}, Response(error="connection refused"), False, "no answer: connection refused"),
        ({"path": "/s", "sse": {"min_events": 3}}, answer(events=[(0.1, "a"), (0.2, "b")]), False, "2 streamed event(s), expected at least 3"),
        ({"path": "/s", "sse": {"min_events": 2, "min_spread_ms": 300}}, answer(events=[(0.1, "a"), (0.1, "b"), (0.12, "c")]),
         False, "arrived within 20 ms (buffered?)"),
        ({"path": "/s", "sse": {"min_events": 2, "min_spread_ms": 100}}, answer(events=[(0.1, "a"), (0.5, "b")]), True, "2 events over 400 ms"),
    ],
)  # fmt: skip
def test_check_outcome(check, response, passed, detail):
    outcome = check_outcome(check, response)
    assert outcome["passed"] is passed
    assert detail in outcome["detail"]


@pytest.mark.parametrize(
    ("checks", "problem"),
    [
        ("health", "checks must be a list of checks, got str"),
        (["health"], "checks[0] must be a mapping"),
        ([{"path": "/h"}], "needs a name"),
        ([{"name": "a", "path": "h"}], "path must start with /"),
        ([{"name": "a", "path": "/h", "json": ["status"]}], "json must be a mapping, got list"),
        ([{"name": "a", "path": "/h", "status": "ok"}], "status must be an HTTP status code"),
        ([{"name": "a", "path": "/h", "status": True}], "status must be an HTTP status code"),
        ([{"name": "a", "path": "/h", "contains": 5}], "contains must be text"),
        ([{"name": "a", "path": "/h", "method": "FETCH"}], "method must be one of"),
        ([{"name": "a", "path": "/h", "expect": 200}], "unknown key(s) expect"),
        ([{"name": "a", "path": "/h"}, {"name": "a", "path": "/i"}], "the name 'a' is used twice"),
        # every field typed here, so a wrong one fails before any tenant stops (not at its first request)
        ([{"name": "a", "path": "/h", "timeout": "10s"}], "timeout must be a number of seconds, e.g. 10, got '10s'"),
        ([{"name": "a", "path": "/h", "timeout": 0}], "timeout must be a number of seconds"),
        ([{"name": "a", "path": "/h", "timeout": float("inf")}], "timeout must be a number of seconds"),
        ([{"name": "a", "path": "/h", "timeout": "nan"}], "timeout must be a number of seconds"),
        ([{"name": "a", "path": "/h", "sse": {"min_events": ".inf"}}], "sse.min_events must be a whole number"),
        ([{"name": "a", "path": "/h", "sse": {"min_events": "three"}}], "sse.min_events must be a whole number"),
        ([{"name": "a", "path": "/h", "sse": {"min_events": 2.5}}], "sse.min_events must be a whole number"),
        (
            [{"name": "a", "path": "/h", "sse": {"min_spread_ms": -1}}],
            "sse.min_spread_ms must be a number of at least 0",
        ),
        ([{"name": "a", "path": "/h", "sse": {"events": 3}}], "sse has unknown key 'events'"),
        ([{"name": "a", "path": "/h", "sse": "yes"}], "sse must be a mapping"),
        ([{"name": "a", "path": "/h", "enabled": "no"}], "enabled must be true or false"),
        ([{"name": "a", "path": "/h", "json_keys": [1]}], "json_keys must be a list of names"),
        ([{"name": "a", "path": "/h", "skip_without": "token"}], "skip_without must be a list"),
        ([{"name": "a", "path": "/h", "save": {"token": 1}}], "save must map variable names to paths"),
        ([{"name": "a", "path": "/h", "headers": {"X": ["a"]}}], "headers values must be text"),
        ([{"name": "a", "path": "/h", "description": 3}], "description must be text"),
        # the container checks are the testing checklist's only (a smoke check runs inside the transaction)
        ([{"name": "a", "isolation": True}], "unknown key(s) isolation"),
        ([{"name": "a", "path": "/h", "restart": True}], "unknown key(s) restart"),
    ],
)
def test_check_problems(checks, problem):
    assert any(problem in p for p in check_problems(checks)), check_problems(checks)


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"name": "a", "isolation": True}, None),
        ({"name": "a", "isolation": True, "enabled": False}, None),
        ({"name": "a", "path": "/h", "restart": True}, None),
        ({"name": "a", "path": "/h", "restart": {"wait": 60}}, None),
        ({"name": "a", "path": "/h", "restart": False}, None),
        ({"name": "a", "isolation": "yes"}, "isolation must be true or false"),
        (
            {"name": "a", "isolation": True, "path": "/h"},
            "an isolation check sends no request of its own, so path has no use",
        ),
        ({"name": "a", "isolation": False}, "path must start with /"),
        ({"name": "a", "path": "/h", "restart": "yes"}, "restart must be true, false or {wait: seconds}"),
        ({"name": "a", "path": "/h", "restart": {"wait": 0}}, "restart must be true, false or {wait: seconds}"),
        ({"name": "a", "path": "/h", "restart": {"after": 3}}, "restart must be true, false or {wait: seconds}"),
        ({"name": "a", "memory": {"max": "700m"}}, None),
        ({"name": "a", "memory": {"max": "90%", "max_growth_percent": 5, "passes": 3}}, None),
        ({"name": "a", "memory": {"max": "lots"}}, "memory.max must be 700m or 90%"),
        ({"name": "a", "memory": {"max": "0%"}}, "memory.max must be 700m or 90%"),
        ({"name": "a", "memory": {"max": "150%"}}, "memory.max must be 700m or 90%"),
        ({"name": "a", "memory": {}}, "memory.max must be"),
        ({"name": "a", "memory": {"max": "1g", "max_growth_percent": -1}}, "memory.max_growth_percent must be"),
        ({"name": "a", "memory": {"max": "1g", "passes": 0}}, "memory.passes must be a whole number from 1 to 10"),
        ({"name": "a", "memory": {"max": "1g", "leak": 1}}, "memory has unknown key 'leak'"),
        ({"name": "a", "memory": "1g"}, "memory must be a mapping"),
        ({"name": "a", "memory": {"max": "0"}}, "memory.max must be 700m or 90%"),
        ({"name": "a", "memory": {"max": "1g", "passes": 11}}, "memory.passes must be a whole number from 1 to 10"),
        ({"name": "a", "path": "/h", "restart": {"wait": 7200}}, "restart must be true, false or {wait: seconds}"),
        ({"name": "a", "method": "POST", "path": "/h", "restart": True}, "its request must be a GET"),
        ({"name": "a", "memory": {"max": "1g"}, "path": "/h"}, "a memory check sends no request of its own, so path"),
        ({"name": "a", "certificate": True}, None),
        ({"name": "a", "certificate": {"min_days": 30}}, None),
        ({"name": "a", "certificate": {"min_days": "30"}}, None),
        ({"name": "a", "certificate": {}}, None),
        (
            {"name": "a", "certificate": {"min_days": -1}},
            "certificate must be true or {min_days: a whole number of days}",
        ),
        ({"name": "a", "certificate": {"min_days": 2.5}}, "certificate must be true or {min_days"),
        ({"name": "a", "certificate": {"days": 3}}, "certificate must be true or {min_days"),
        ({"name": "a", "certificate": "yes"}, "certificate must be true or {min_days"),
        ({"name": "a", "certificate": True, "path": "/"}, "a certificate check sends no request of its own, so path"),
        ({"name": "a", "certificate": False}, "path must start with /"),
    ],
)
def test_container_check_problems(check, problem):
    problems = check_problems([check], container_checks=True)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


class Hooks:
    def __init__(self, problems=(), restart_error=None, memory=(), limit=0):
        self.problems = list(problems)
        self.restart_error = restart_error
        self.restarts = 0
        self.readings = list(memory)
        self.limit = limit

    def memory(self):
        used = self.readings.pop(0)
        return used, self.limit, None if used is not None else "container gone"

    def isolation(self):
        return self.problems

    def restart(self):
        self.restarts += 1
        return self.restart_error


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_an_isolation_check_sends_nothing_and_names_every_problem():
    send = Recorder({})
    checks = [{"name": "isolated", "isolation": True}]
    passed, _values = run_checks(checks, "http://127.0.0.1:80", send=send, container=Hooks())
    failed, _values = run_checks(checks, "http://127.0.0.1:80", send=send, container=Hooks(["runs privileged", "x"]))
    missing, _values = run_checks(checks, "http://127.0.0.1:80", send=send)
    assert send.sent == []
    assert passed[0]["passed"] is True
    assert failed[0] == {"name": "isolated", "passed": False, "detail": "runs privileged; x"}
    assert missing[0]["passed"] is False
    assert "no container to inspect" in missing[0]["detail"]


def test_a_restart_check_restarts_then_tries_until_the_app_answers():
    answers = iter([answer(502), answer(502), answer(body='{"id": "f"}')])
    clock = Clock()
    hooks = Hooks()
    outcomes, _values = run_checks([{"name": "kept", "path": "/f", "restart": {"wait": 60}, "json": {"id": "f"}}],
                                   "http://127.0.0.1:80", send=lambda *a, **k: next(answers), container=hooks,
                                   clock=clock, sleep=clock.sleep)  # fmt: skip
    assert hooks.restarts == 1
    assert outcomes[0]["passed"] is True
    assert outcomes[0]["detail"] == "HTTP 200 (after a restart, 2 s)"


def test_a_restart_check_fails_when_the_wait_is_over_or_the_restart_fails():
    clock = Clock()
    outcomes, _values = run_checks([{"name": "kept", "path": "/f", "restart": {"wait": 5}}], "http://127.0.0.1:80",
                                   send=lambda *a, **k: answer(502), container=Hooks(), clock=clock, sleep=clock.sleep)  # fmt: skip
    assert outcomes[0]["passed"] is False
    assert outcomes[0]["detail"] == "HTTP 502, expected 200 (after a restart, 5 s)"
    send = Recorder({})
    refused, _values = run_checks([{"name": "kept", "path": "/f", "restart": True}], "http://127.0.0.1:80", send=send,
                                  container=Hooks(restart_error="restarting container c: gone"))  # fmt: skip
    assert refused[0] == {"name": "kept", "passed": False, "detail": "restart failed: restarting container c: gone"}
    assert send.sent == [], "nothing is asked of a container that did not restart"


class Recorder:
    """A fake HTTP peer: answers by path, records what was sent."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers
        self.sent: list = []

    def __call__(self, method, url, headers=None, body=None, timeout=10.0, server_name=None):
        self.sent.append({"method": method, "url": url, "headers": headers, "body": body, "server_name": server_name})
        return self.answers.get(url.split("127.0.0.1:80", 1)[-1]) or answer(404)


def test_values_flow_from_check_to_check_and_never_into_results():
    send = Recorder({
        "/api/v1/auths/signin": answer(body=json.dumps({"token": "tok-abcdef-123", "id": "u1"})),
        "/api/v1/auths/": answer(body=json.dumps({"email": "admin@lab.test"})),
    })  # fmt: skip
    checks = [
        {"name": "sign in", "method": "POST", "path": "/api/v1/auths/signin",
         "json_body": {"email": "${email}", "password": "${password}"}, "save": {"token": "token"}},
        {"name": "who am I", "path": "/api/v1/auths/", "headers": {"Authorization": "Bearer ${token}"},
         "json": {"email": "${email}"}},
        {"name": "off", "path": "/never", "enabled": False},
    ]  # fmt: skip
    outcomes, values = run_checks(checks, "http://127.0.0.1:80", host_header="a.lab",
                                  variables={"email": "admin@lab.test", "password": "pw-secret-1"}, send=send)  # fmt: skip
    assert [o["passed"] for o in outcomes] == [True, True]
    assert values["token"] == "tok-abcdef-123"
    assert json.loads(send.sent[0]["body"]) == {"email": "admin@lab.test", "password": "pw-secret-1"}
    assert send.sent[1]["headers"]["Authorization"] == "Bearer tok-abcdef-123"
    assert send.sent[1]["headers"]["Host"] == "a.lab"
    assert len(send.sent) == 2, "a switched-off check is not sent"
    assert "pw-secret-1" not in json.dumps(outcomes)
    assert "tok-abcdef-123" not in json.dumps(outcomes)


def test_a_check_needing_a_value_nobody_provided_fails_without_a_request():
    send = Recorder({})
    outcomes, _values = run_checks([{"name": "me", "path": "/me", "headers": {"Authorization": "Bearer ${token}"}}],
                                   "http://127.0.0.1:80", send=send)  # fmt: skip
    assert outcomes[0]["passed"] is False
    assert "needs ${token}, which no earlier check or setting provided" in outcomes[0]["detail"]
    assert send.sent == []


def test_a_saved_value_missing_from_the_answer_fails_the_check():
    send = Recorder({"/login": answer(body='{"detail": "no"}')})
    outcomes, values = run_checks(
        [{"name": "login", "path": "/login", "save": {"token": "token"}}], "http://127.0.0.1:80", send=send
    )
    assert outcomes[0]["passed"] is False
    assert "the answer has no 'token' to keep as ${token}" in outcomes[0]["detail"]
    assert "token" not in values


def test_a_secret_echoed_in_an_answer_is_masked_in_the_detail():
    send = Recorder({"/x": answer(body=json.dumps({"who": "pw-secret-1"}))})
    checks = [{"name": "x", "path": "/x", "json": {"who": "someone"}}]
    outcomes, _values = run_checks(checks, "http://127.0.0.1:80", variables={"password": "pw-secret-1"}, send=send)
    assert "pw-secret-1" not in outcomes[0]["detail"]
    assert "********" in outcomes[0]["detail"]


@pytest.mark.parametrize(
    ("tls", "nginx_ports", "address"),
    [
        (False, None, ("http://127.0.0.1:3001", None)),
        (True, None, ("http://127.0.0.1:3001", None)),
        (False, (8080, 8443), ("http://127.0.0.1:8080", None)),
        (True, (8080, 8443), ("https://127.0.0.1:8443", "acme.example")),
    ],
)
def test_a_tenant_is_reached_directly_or_through_nginx_on_the_port_of_its_scheme(tls, nginx_ports, address):
    assert tenant_address(3001, "acme.example", tls, nginx_ports) == address


def test_a_whole_answer_saved_goes_back_in_a_json_body_as_it_was():
    """A setting read, changed, then put back exactly as it was (a list of mappings, not its text)."""
    before = [{"id": "theirs", "content": "keep me", "dismissible": True, "timestamp": 0}]
    send = Recorder({"/banners": answer(body=json.dumps(before))})
    checks = [
        {"name": "read", "path": "/banners", "save": {"banners_before": "."}},
        {"name": "put back", "method": "POST", "path": "/banners",
         "json_body": {"banners": "${banners_before}", "note": "was ${banners_before}"}},
    ]  # fmt: skip
    outcomes, values = run_checks(checks, "http://127.0.0.1:80", send=send)
    assert [o["passed"] for o in outcomes] == [True, True]
    assert values["banners_before"] == before
    sent = json.loads(send.sent[1]["body"])
    assert sent["banners"] == before, "a whole ${name} keeps its type"
    assert sent["note"] == f"was {before}", "inside text it is text"


MIB = 1024**2


@pytest.mark.parametrize(
    ("spec", "readings", "limit", "passed", "detail"),
    [
        ({"max": "90%"}, [400 * MIB, 410 * MIB], 1024 * MIB, True, "at most 921.6 MB and +10% allowed"),
        ({"max": "300m"}, [400 * MIB, 400 * MIB], 0, False, "more than the 300.0 MB allowed (300m)"),
        ({"max": "1g"}, [400 * MIB, 500 * MIB], 0, False, "it grew by more than 10%"),
        ({"max": "1g", "max_growth_percent": 30}, [400 * MIB, 500 * MIB], 0, True, "+25.0%"),
        ({"max": "90%"}, [400 * MIB, 400 * MIB], 0, False, "the engine says of no limit, so give memory.max in bytes"),
        # a tiny app's rise of a few megabytes is noise, whatever share of it it is (seen on the lab: 488 KB -> 2 MB)
        ({"max": "64m"}, [488 * 1024, 2048 * 1024], 0, True, "(+319.7%); at most 64.0 MB and +10% allowed"),
        ({"max": "64m"}, [488 * 1024, 5 * MIB], 0, False, "it grew by more than 10%"),
        ({"max": "1g"}, [None], 0, False, "memory could not be read: container gone"),
        ({"max": "1g"}, [400 * MIB, None], 0, False, "could not be read after the passes: container gone"),
    ],
)
def test_a_memory_check(spec, readings, limit, passed, detail):
    send = Recorder({"/health": answer(body='{"status": true}'), "/save": answer(body='{"id": "x"}')})
    checks = [
        {"name": "health", "path": "/health"},
        {"name": "save", "method": "POST", "path": "/save"},
        {"name": "memory", "memory": {**spec, "passes": 2}},
    ]
    outcomes, _values = run_checks(checks, "http://127.0.0.1:80", send=send,
                                   container=Hooks(memory=readings, limit=limit))  # fmt: skip
    memory = outcomes[-1]
    assert memory["passed"] is passed, memory
    assert detail in memory["detail"], memory
    if readings[0] is not None and readings[-1] is not None:
        assert (memory["memory_bytes"], memory["memory_after_bytes"]) == (readings[0], readings[-1])
        # the read-only check that passed is sent twice more; the POST is not sent again
        assert [s["url"] for s in send.sent] == ["http://127.0.0.1:80/health", "http://127.0.0.1:80/save"] + [
            "http://127.0.0.1:80/health"
        ] * 2


def test_a_whole_scalar_stays_text_as_it_always_was():
    """A numeric password from the vault is sent as text: only a kept list or mapping keeps its type."""
    send = Recorder({})
    run_checks([{"name": "in", "method": "POST", "path": "/in", "json_body": {"password": "${pw}", "n": "${none}"}}],
               "http://127.0.0.1:80", variables={"pw": 12345678, "none": None}, send=send)  # fmt: skip
    assert json.loads(send.sent[0]["body"]) == {"password": "12345678", "n": "None"}


def test_an_optional_save_leaves_the_value_unset_and_a_kept_answer_is_masked_at_any_depth():
    send = Recorder({
        "/none": answer(body='{"users": [], "total": 0}'),
        "/one": answer(body='{"users": [{"id": "u-left-1"}], "total": 1}'),
        "/keys": answer(body='{"api_key": "sk-very-secret-key-1"}'),
        "/echo": answer(body='{"echo": "sk-very-secret-key-1", "long": "' + "t" * 120 + '"}'),
    })  # fmt: skip
    checks = [
        {"name": "none", "path": "/none", "save": {"nobody": "users.0.id?"}},
        {"name": "one", "path": "/one", "save": {"left": "users.0.id?"}},
        {"name": "keys", "path": "/keys", "save": {"all": "."}},
        {"name": "echo", "path": "/echo", "json": {"echo": "x", "long": "y"}},
        {"name": "long", "path": "/echo", "json": {"long": "y"}},
    ]
    outcomes, values = run_checks(checks, "http://127.0.0.1:80", send=send)
    assert [o["passed"] for o in outcomes[:3]] == [True, True, True]
    assert "nobody" not in values
    assert values["left"] == "u-left-1"
    assert "sk-very-secret-key-1" not in json.dumps(outcomes), "a secret inside a kept mapping is masked"
    assert outcomes[4]["detail"] == "JSON 'long' is a value of 122 characters, expected \"y\"", "never a cut value"


def test_a_memory_check_needs_read_only_checks_before_it_and_a_reading():
    outcomes, _values = run_checks([{"name": "memory", "memory": {"max": "1g"}}], "http://127.0.0.1:80",
                                   send=Recorder({}), container=Hooks(memory=[100]))  # fmt: skip
    assert "no read-only (GET) check passed above it" in outcomes[0]["detail"]
    send = Recorder({"/h": answer(body="{}")})
    zero, _values = run_checks([{"name": "h", "path": "/h"}, {"name": "memory", "memory": {"max": "1g"}}],
                               "http://127.0.0.1:80", send=send, container=Hooks(memory=[0, 0]))  # fmt: skip
    assert zero[1]["detail"] == "memory could not be read: the engine reports 0 bytes"


def served(days_left: float, issuer: str = "lab CA") -> dict:
    """A certificate as ``ssl`` gives it, valid for ``days_left`` more days from now."""
    not_after = time.gmtime(time.time() + days_left * 86400)
    return {"notAfter": time.strftime("%b %d %H:%M:%S %Y GMT", not_after),
            "issuer": ((("organizationName", "Lab"),), (("commonName", issuer),))}  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "probe", "passed", "detail"),
    [
        (True, None, True, "skipped: the tenant is served over plain HTTP"),
        (
            True,
            (None, "the certificate served for acme.lab is not valid for that name"),
            False,
            "the certificate served for acme.lab is not valid for that name",
        ),
        (
            True,
            (served(90), None),
            True,
            "trusted, valid for the tenant's domain, issued by lab CA, 89 days left (at least 14",
        ),
        (True, (served(10), None), False, "trusted, issued by lab CA, but expires in 9 day(s)"),
        ({"min_days": 5}, (served(10), None), True, "(at least 5 required)"),
        ({"min_days": 0}, (served(-1), None), False, "but expired on"),
        (True, ({"issuer": ()}, None), False, "no end date that can be read"),
    ],
)
def test_a_certificate_check_judges_what_nginx_serves(spec, probe, passed, detail):
    send = Recorder({})
    tls_probe = None if probe is None else (lambda: probe)
    outcomes, _values = run_checks([{"name": "certificate", "certificate": spec}], "https://127.0.0.1:443",
                                   send=send, tls_probe=tls_probe)  # fmt: skip
    assert send.sent == [], "a certificate check sends no request"
    assert outcomes[0]["passed"] is passed
    assert detail in outcomes[0]["detail"], outcomes[0]["detail"]
