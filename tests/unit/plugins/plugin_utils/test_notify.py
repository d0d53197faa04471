# SPDX-License-Identifier: GPL-3.0-or-later
"""Notifications: target parsing, the message of each event, the body each kind of target gets, secret masking."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.plugin_utils._notify import (
    EVENTS,
    EmailTarget,
    SlackTarget,
    WebhookTarget,
    compose,
    due,
    parse_targets,
    parse_timeout,
    secret_values,
)

D1, D2 = ("sha256:" + c * 64 for c in "12")
REPO = "registry.example/acme/open-webui"
NO_MASK = SecretMask()


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"name": "ops", "type": "webhook", "url": "https://hooks.example/x"}, None),
        (
            {"name": "chat", "type": "slack", "url": "http://127.0.0.1:9/services/T/B/secret", "events": ["rollout"]},
            None,
        ),
        ({"name": "mail", "type": "email", "to": "oncall@example.com", "host": "smtp", "port": 2525}, None),
        (
            {"name": "bad-url", "type": "webhook", "url": "hooks.example/x"},
            "bad-url in release_notify_targets has no valid http(s) url",
        ),
        (
            {"name": "ftp", "type": "slack", "url": "ftp://hooks.example/x"},
            "ftp in release_notify_targets has no valid http(s) url",
        ),
        (
            {"name": "port", "type": "webhook", "url": "http://h:99999/"},
            "port in release_notify_targets has no valid http(s) url",
        ),
        (
            {"name": "kind", "type": "pager"},
            "kind in release_notify_targets has type 'pager': use one of webhook, slack, email",
        ),
        (
            {"type": "webhook", "url": "http://h/", "events": ["deploy"]},
            "#1 in release_notify_targets lists unknown events ['deploy']",
        ),
        (
            {"name": "hdr", "type": "webhook", "url": "http://h/", "headers": ["x"]},
            "hdr in release_notify_targets has headers that are not a mapping",
        ),
        (
            {"name": "noto", "type": "email", "host": "smtp"},
            "noto in release_notify_targets needs to: one or more e-mail addresses",
        ),
        (
            {"name": "badto", "type": "email", "to": ["oncall"]},
            "badto in release_notify_targets needs to: one or more e-mail",
        ),
        (
            {"name": "badport", "type": "email", "to": ["a@b"], "port": "smtp"},
            "badport in release_notify_targets needs a port 1-65535",
        ),
        (
            {"name": "tls", "type": "email", "to": ["a@b"], "secure": "yes"},
            "tls in release_notify_targets needs a port 1-65535 and secure one of",
        ),
        ("https://hooks.example/x", "#1 in release_notify_targets must be a mapping, got str"),
    ],
)
def test_each_malformed_target_is_one_problem_line_and_is_skipped(entry, problem):
    targets, problems = parse_targets([entry])
    if problem is None:
        assert problems == []
        assert len(targets) == 1
    else:
        assert targets == []
        assert len(problems) == 1
        assert problem in problems[0]
        assert problems[0].endswith("it is skipped")


@pytest.mark.parametrize(("value", "problems"), [(None, 0), ([], 0), ({"url": "x"}, 1), ("http://x", 1)])
def test_targets_that_are_not_a_list_send_nothing_and_say_so(value, problems):
    targets, found = parse_targets(value)
    assert targets == []
    assert len(found) == problems


def test_targets_keep_what_they_were_given_and_default_to_every_event():
    (hook, mail), problems = parse_targets([
        {"name": "ops", "type": "webhook", "url": "https://hooks.example/x?token=abc", "headers": {"X-Team": "ops"}},
        {"name": "mail", "type": "email", "to": ["a@example.com", "b@example.com"], "host": "smtp", "port": "2525",
         "username": "u", "password": "p", "secure": "never", "events": ["rollback"]},
    ])  # fmt: skip
    assert problems == []
    assert (type(hook), type(mail)) == (WebhookTarget, EmailTarget)
    assert hook.events == EVENTS
    assert hook.headers == {"X-Team": "ops"}
    assert hook.where() == "https://hooks.example"  # the path and query (a token) are never shown
    assert (mail.to, mail.port, mail.secure, mail.events) == (
        ("a@example.com", "b@example.com"),
        2525,
        "never",
        ("rollback",),
    )
    assert mail.where() == "smtp://smtp:2525"


@pytest.mark.parametrize(
    ("value", "seconds", "problem"), [(5, 5, False), ("3", 3, False), (0, 5, True), ("soon", 5, True), (61, 5, True)]
)
def test_timeout(value, seconds, problem):
    got, why = parse_timeout(value)
    assert got == seconds
    assert bool(why) is problem


def test_secret_values_are_found_by_key_name_and_under_secrets():
    data = [
        {"name": "acme", "domain": "acme.example", "env": {"WEBUI_NAME": "Acme", "OAUTH_CLIENT_SECRET": "oauth-1"},
         "secrets": {"WEBUI_SECRET_KEY": "key-1", "OTHER": "plain-looking"}},
        {"username": "robot", "password": "pw-1", "api_token": 12345, "enabled": True},
    ]  # fmt: skip
    assert secret_values(data) == {"oauth-1", "key-1", "plain-looking", "pw-1", "12345"}


CANDIDATE = {
    "image": f"{REPO}:0.12.4@{D2}",
    "digest": D2,
    "passed": False,
    "hosts": {"test1": {"passed": False, "failures": ["acme: pipe save: HTTP 400 (expected 200)"]}},
    "evidence": "/inv/.release_state/evidence/sha256-2222.json",
}
ROLLOUT_OK = {
    "image": f"{REPO}:0.12.4@{D2}",
    "hosts": {
        "prod1": {"tenants": [{"name": "acme", "outcome": "replaced", "image": f"{REPO}@{D2}", "previous_digest": D1,
                               "timings": {"total_s": 14.2, "unavailable_s": 13.0}},
                              {"name": "globex", "outcome": "unchanged", "image": f"{REPO}@{D2}"}]},
        "prod2": {"tenants": [{"name": "initech", "outcome": "replaced", "image": f"{REPO}@{D2}", "previous_digest": D1,
                               "timings": {"total_s": 15.0}}]},
    },
    "failures": {"prod1": None, "prod2": None},
}  # fmt: skip
ROLLOUT_STOPPED = {
    "image": f"{REPO}:0.12.4@{D2}",
    "hosts": {
        "prod1": {"tenants": [{"name": "acme", "outcome": "put_back", "image": f"{REPO}@{D2}", "failure": "not ready in 120 s",
                               "standing": "DOWN: docker start openwebui-acme"}]},
        "prod2": None,
    },
    "failures": {"prod1": "prod1: 1 tenant failed and was put back", "prod2": None},
}  # fmt: skip


@pytest.mark.parametrize(
    ("event", "facts", "status", "title", "in_text"),
    [
        ("candidate_tested", CANDIDATE, "failed", f"Candidate {REPO}:0.12.4 ({D2[:19]}) FAILED its checklist on test1",
         ["test1: FAILED: acme: pipe save: HTTP 400", "promote.yml will refuse this digest", "evidence: /inv/"]),
        ("candidate_tested", dict(CANDIDATE, passed=True, hosts={"test1": {"passed": True}}), "ok",
         f"Candidate {REPO}:0.12.4 ({D2[:19]}) passed its checklist on test1", ["test1: passed", "promote.yml will pin it"]),
        ("pin_changed", {"previous": {"digest": D1},
                         "current": {"repository": REPO, "digest": D2, "tag": "0.12.4", "reason": "promote 0.12.4",
                                     "image": f"{REPO}:0.12.4@{D2}"}},
         "ok", f"Production pin {REPO}: {D1[:19]} -> {D2[:19]} (0.12.4)", ["reason: promote 0.12.4"]),
        ("rollout", ROLLOUT_OK, "ok", f"Rollout of {REPO}:0.12.4 finished on 2 host(s)",
         ["prod1: 1 replaced, 1 up to date, 0 put back, 0 DOWN", f"  acme: replaced {D1[:19]} -> {D2[:19]} in 14.2 s",
          "prod2: 1 replaced"]),
        ("rollout", ROLLOUT_STOPPED, "failed", f"Rollout of {REPO}:0.12.4 STOPPED: failed on prod1, 1 tenant(s) DOWN",
         ["prod1: 0 replaced, 0 up to date, 1 put back, 1 DOWN, 0 not attempted; FAILED: prod1: 1 tenant failed",
          "put back (1): prod1", "not reached (1): prod2"]),
        ("rollback", {"target": {"image": f"{REPO}@{D1}"}, "reason": "pipes broken", "summary": "rollback to ...: prod1: ok",
                      "failed_hosts": []},
         "warning", f"Rollback to {REPO}@{D1[:19]} done", ["reason: pipes broken", "prod1: ok"]),
        ("rollback", {"target": {"image": f"{REPO}@{D1}"}, "reason": "r", "summary": "s", "failed_hosts": ["prod2"]},
         "failed", f"Rollback to {REPO}@{D1[:19]} FAILED on prod2", []),
        ("drift", {"report": {"pin": f"{REPO}@{D2}", "drifted": True, "hosts": {"prod1": {"drifted": True}, "prod2": {"drifted": False}},
                              "rows": [{"host": "prod1", "container": "openwebui-acme", "field": "digest", "expected": D2, "actual": D1}]}},
         "failed", f"Drift found on prod1 against {REPO}@{D2[:19]}", [f"prod1 openwebui-acme digest: expected {D2}, actual {D1}"]),
        ("drift", {"report": {"pin": f"{REPO}:0.12.4@{D2}", "drifted": False, "hosts": {}, "rows": []}},
         "ok", f"Drift cleared: every checked host matches {REPO}:0.12.4", []),
    ],
)  # fmt: skip
def test_each_event_says_what_happened(event, facts, status, title, in_text):
    message = compose(event, facts, "alice", "2026-11-26T01:00:00Z", NO_MASK)
    assert (message["event"], message["status"], message["title"]) == (event, status, title)
    assert (message["operator"], message["at"]) == ("alice", "2026-11-26T01:00:00Z")
    for text in in_text:
        assert text in message["text"]


FLEET = [f"prod{i}" for i in range(1, 21)]
WAVES = [FLEET[:1], FLEET[1:6], FLEET[6:]]  # [1, "25%", "100%"] on 20 hosts
DONE = {"tenants": [{"name": "acme", "outcome": "replaced", "image": f"{REPO}@{D2}", "previous_digest": D1}]}
PUT_BACK = {"tenants": [{"name": "acme", "outcome": "put_back", "image": f"{REPO}@{D1}", "failure": "not ready"}]}


def _waves_facts(reached: list, failed: dict, batch: list, budget: int = 0) -> dict:
    hosts = {h: (PUT_BACK if h in failed else DONE) if h in reached else None for h in FLEET}
    return {"image": f"{REPO}:0.12.4@{D2}", "hosts": hosts, "failures": {h: failed.get(h) for h in FLEET},
            "waves": WAVES, "batch": batch, "budget": budget}  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "status", "title", "lines"),
    [
        (_waves_facts(FLEET[:6], {"prod4": "prod4: 1 tenant failed and was put back"}, WAVES[1]),
         "failed", f"Rollout of {REPO}:0.12.4 STOPPED in wave 2 of 3: failed on prod4",
         ["done (5): prod1, prod2, prod3, prod5, prod6", "put back (1): prod4",
          "not reached (14): prod7, prod8, prod9", "prod4: 0 replaced, 0 up to date, 1 put back"]),
        (_waves_facts(FLEET[:6], {"prod4": "prod4: failed"}, WAVES[1], budget=20),
         "warning", f"Rollout of {REPO}:0.12.4 going on after wave 2 of 3: failed on prod4, within its failure budget (20% of a wave)",
         ["done (5): ", "not reached (14): "]),
        (_waves_facts(FLEET, {"prod4": "prod4: failed"}, WAVES[2], budget=20),
         "warning", f"Rollout of {REPO}:0.12.4 finished on 19 of 20 host(s): failed on prod4, within its failure budget (20% of a wave)",
         ["done (19): ", "put back (1): prod4"]),
        (_waves_facts(FLEET[:1], {"prod1": "prod1: failed"}, WAVES[0], budget=50),  # the canary is a wave of one
         "failed", f"Rollout of {REPO}:0.12.4 STOPPED in wave 1 of 3: failed on prod1", ["not reached (19): prod2, "]),
        (_waves_facts(FLEET, {}, WAVES[2]), "ok", f"Rollout of {REPO}:0.12.4 finished on 20 host(s)", ["done (20): prod1, "]),
        # a host of the wave that went unreachable is not in the batch: still that wave, its size the wave's
        (_waves_facts(FLEET[:6], {"prod4": "prod4: failed"}, ["prod2", "prod3", "prod4", "prod5"], budget=20),
         "warning", f"Rollout of {REPO}:0.12.4 going on after wave 2 of 3: failed on prod4, within its failure budget (20% of a wave)", []),
        # prod3 went unreachable: Ansible dropped it from the batch, and the role could not say why
        (dict(_waves_facts(FLEET[:6], {}, ["prod2", "prod4", "prod5", "prod6"]), dropped=["prod3"]),
         "failed", f"Rollout of {REPO}:0.12.4 STOPPED in wave 2 of 3: failed on prod3",
         ["put back (1): prod3", "prod3: 1 replaced, 0 up to date, 0 put back, 0 DOWN, 0 not attempted; FAILED: unreachable"]),
        # a whole wave failed: Ansible ends the play whatever the budget
        (_waves_facts(FLEET[:1], {"prod1": "prod1: failed"}, WAVES[0], budget=100),
         "failed", f"Rollout of {REPO}:0.12.4 STOPPED in wave 1 of 3: failed on prod1", []),
        (dict(_waves_facts(FLEET[:6], {"prod4": "prod4: failed"}, WAVES[1]), budget="garbage"),
         "failed", f"Rollout of {REPO}:0.12.4 STOPPED in wave 2 of 3: failed on prod4", []),
    ],
)  # fmt: skip
def test_a_rollout_in_waves_says_which_hosts_are_done_put_back_and_not_reached(facts, status, title, lines):
    message = compose("rollout", facts, "alice", "now", NO_MASK)
    assert (message["status"], message["title"]) == (status, title)
    for line in lines:
        assert line in message["text"]
    not_reached = {h for h, result in facts["hosts"].items() if result is None}
    assert not [line for line in message["text"].splitlines() if line.split(":")[0] in not_reached]  # no host line


@pytest.mark.parametrize(
    ("event", "facts", "told"),
    [
        ("rollout", _waves_facts(FLEET[:1], {}, WAVES[0]), False),  # the canary went well
        ("rollout", _waves_facts(FLEET[:6], {}, WAVES[1]), False),
        ("rollout", _waves_facts(FLEET[:6], {"prod4": "prod4: failed"}, WAVES[1], budget=20), True),
        ("rollout", _waves_facts(FLEET, {}, WAVES[2]), True),
        ("rollout", {"image": f"{REPO}@{D2}", "hosts": {"prod1": DONE}}, True),  # no waves: one batch
        ("drift", {}, True),
        ("rollback", {}, True),
    ],
)
def test_only_a_rollout_wave_that_went_well_before_the_last_is_not_told(event, facts, told):
    assert due(event, facts) is told


def test_a_secret_that_reaches_a_result_never_reaches_a_message():
    facts = dict(ROLLOUT_STOPPED, failures={"prod1": "prod1: env WEBUI_SECRET_KEY=hunter2-key rejected"})
    message = compose("rollout", facts, "alice", "now", SecretMask(["hunter2-key"]))
    assert "hunter2-key" not in json.dumps(message)
    assert "WEBUI_SECRET_KEY=********" in message["text"]


def test_slack_gets_text_and_a_webhook_gets_the_message():
    message = compose("rollout", ROLLOUT_STOPPED, "alice", "now", NO_MASK)
    slack = json.loads(SlackTarget(name="s", url="http://h/").body(message))
    assert list(slack) == ["text"]
    assert slack["text"].startswith(":red_circle: *Rollout of")
    assert "```\nput back (1): prod1" in slack["text"]
    assert "_alice, now_" in slack["text"]
    assert json.loads(WebhookTarget(name="w", url="http://h/").body(message)) == message
    rollback = compose(
        "rollback", {"target": {"image": f"{REPO}@{D1}"}, "reason": "r", "summary": "s"}, "a", "t", NO_MASK
    )
    assert json.loads(SlackTarget(name="s", url="http://h/").body(rollback))["text"].startswith(
        f":warning: *Rollback to {REPO}@{D1[:19]} done*"
    )


def test_email_arguments_for_community_general_mail():
    message = compose("candidate_tested", CANDIDATE, "alice", "now", NO_MASK)
    plain = EmailTarget(name="m", to=("a@example.com",), host="smtp", port=2525, secure="never")
    arguments = plain.arguments(message, timeout=3)
    assert arguments["subject"].startswith("[pinned.release] FAILED: Candidate ")
    assert (arguments["to"], arguments["port"], arguments["secure"], arguments["timeout"]) == (
        ["a@example.com"],
        2525,
        "never",
        3,
    )
    assert "username" not in arguments
    assert "-- alice, now (candidate_tested)" in arguments["body"]
    login = EmailTarget(name="m", to=("a@b",), username="u", password="p").arguments(message, 3)
    assert (login["username"], login["password"]) == ("u", "p")


def test_each_target_type_sends_its_own_way():
    message = compose("rollout", ROLLOUT_OK, "alice", "now", NO_MASK)
    calls = []

    def post(url, body, headers, timeout):
        calls.append(("post", url, json.loads(body), headers, timeout))
        return ""

    def mail(arguments):
        calls.append(("mail", arguments["to"], arguments["timeout"]))
        return "refused"

    targets, _problems = parse_targets([
        {"name": "ops", "type": "webhook", "url": "https://hooks.example/x", "headers": {"X-Team": "ops"}},
        {"name": "chat", "type": "slack", "url": "https://hooks.slack.example/T/B/secret"},
        {"name": "mail", "type": "email", "to": "oncall@example.com"},
    ])  # fmt: skip
    assert [t.side_by_side for t in targets] == [True, True, False], "HTTP in threads, the mail module in turn"
    assert [t.send(message, 4, post, mail) for t in targets] == ["", "", "refused"]
    assert calls[0] == ("post", "https://hooks.example/x", message, {"X-Team": "ops"}, 4)
    assert (calls[1][1], list(calls[1][2])) == ("https://hooks.slack.example/T/B/secret", ["text"])
    assert calls[2] == ("mail", ["oncall@example.com"], 4)
    assert targets[1].where() == "https://hooks.slack.example", "a Slack URL's path is its token: never shown"
