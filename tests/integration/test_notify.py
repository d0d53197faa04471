# SPDX-License-Identifier: GPL-3.0-or-later
"""Notifications on the lab: a release cycle tells a real webhook server, a Slack-style hook and a real SMTP server what
happened; broken targets (unreachable, 500, slow, malformed, a refusing SMTP server) are one warning line each and the
release goes on; no secret value in any message; the fleet page renders in Chromium.

What each fault, rollback and drift tells people is asserted by the test that makes it (test_faults.py,
test_rollback_and_drift.py: their runs notify a webhook too), not by running them again here."""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest
import yaml

from tests.support.lab import RELEASE_TAG, ROOT
from tests.support.receivers import SmtpReceiver, WebhookReceiver
from tests.support.workflow import PRODUCTION, SECRETS, TENANTS

SLACK_PATH = "/services/T0000/B0000/slack-url-token-5c1d"
OUTPUT = ROOT / ".build/test-output"  # the screenshot, for a person to look at
BROKEN = ("unreachable", "answers-500", "too-slow", "refusing-smtp")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def receivers():
    hook, smtp, refusing = WebhookReceiver(), SmtpReceiver(), SmtpReceiver(refuse=True)
    yield {"hook": hook, "smtp": smtp, "refusing": refusing}
    for server in (hook, smtp, refusing):
        server.close()


@pytest.fixture(scope="module")
def notified(ws, receivers):
    """The lab inventory with every kind of target, good and broken."""
    hook, smtp, refusing = receivers["hook"], receivers["smtp"], receivers["refusing"]
    targets = [
        {"name": "ops-webhook", "type": "webhook", "url": hook.url("/hook"), "headers": {"X-Team": "ops"}},
        {"name": "team-chat", "type": "slack", "url": hook.url(SLACK_PATH), "events": ["rollout", "rollback", "drift"]},
        {"name": "oncall-mail", "type": "email", "to": ["oncall@example.test"], "host": "127.0.0.1", "port": smtp.port,
         "secure": "never"},
        {"name": "unreachable", "type": "webhook", "url": f"http://127.0.0.1:{closed_port()}/hook"},
        {"name": "answers-500", "type": "webhook", "url": hook.url("/fail")},
        {"name": "too-slow", "type": "webhook", "url": hook.url("/slow")},
        {"name": "malformed", "type": "webhook", "url": "hooks.example.test/no-scheme"},
        {"name": "refusing-smtp", "type": "email", "to": ["oncall@example.test"], "host": "127.0.0.1",
         "port": refusing.port, "secure": "never"},
    ]  # fmt: skip
    (ws.directory / "group_vars/all/notify.yml").write_text(
        yaml.safe_dump({"release_notify_targets": targets, "release_notify_timeout": 2})
    )
    return receivers


def events(receivers, kind: str) -> list:
    return [body for body in receivers["hook"].bodies("/hook") if body["event"] == kind]


def warned(run, step: str) -> None:
    """One warning line per broken target (and the malformed one), and the release went on."""
    for name in BROKEN:
        assert re.search(rf"notification \w+ to {name} \([^)]*\) not sent: ", run.text), (
            f"{step}: no warning for {name}:\n{run.output[-3000:]}"
        )
    assert "notification target malformed in release_notify_targets has no valid http(s) url" in run.text, step


def test_a_tested_candidate_a_pin_change_and_a_rollout_are_told_everywhere(ws, notified):
    v1 = ws.cycle("v1")  # each step asserts it succeeded, broken targets and all
    tested, pinned, rollout = (
        events(notified, "candidate_tested"),
        events(notified, "pin_changed"),
        events(notified, "rollout"),
    )
    assert len(tested) == 1
    assert tested[0]["status"] == "ok"
    assert tested[0]["title"].endswith(f"({v1[:19]}) passed its checklist on test1")
    assert len(pinned) == 1
    assert pinned[0]["title"].endswith(f": nothing -> {v1[:19]} ({RELEASE_TAG})")
    assert pinned[0]["operator"] == "pytest"
    assert len(rollout) == 1
    assert rollout[0]["status"] == "ok"
    assert rollout[0]["title"].endswith("finished on 2 host(s)")
    for node in PRODUCTION:
        assert f"{node}: 2 replaced" in rollout[0]["text"] or f"{node}: 0 replaced, 2 up to date" in rollout[0]["text"]
    for run in ws.runs[-3:]:
        warned(run, run.args[0])
    hook = notified["hook"]
    assert all(p["headers"].get("X-Team") == "ops" for p in hook.posts if p["path"] == "/hook")
    slack = hook.bodies(SLACK_PATH)
    assert [list(body) for body in slack] == [["text"]]
    assert slack[0]["text"].startswith(":white_check_mark: *Rollout of")
    subjects = [m["Subject"] for m in notified["smtp"].messages]
    assert any(s.startswith("[pinned.release] OK: Candidate") for s in subjects), subjects
    assert any(s.startswith("[pinned.release] OK: Production pin") for s in subjects), subjects
    assert any(s.startswith("[pinned.release] OK: Rollout of") for s in subjects), subjects


def test_check_mode_sends_nothing(ws, notified):
    before = len(notified["hook"].posts)
    run = ws.play("playbooks/deploy.yml", "-l", "production", "--check")
    assert run.returncode == 0, run.output[-3000:]
    assert len(notified["hook"].posts) == before


def test_no_secret_value_in_any_message(notified):
    sent = json.dumps([p["body"] for p in notified["hook"].posts])
    sent += "".join(m.as_string() for m in notified["smtp"].messages)
    assert notified["hook"].posts
    assert notified["smtp"].messages
    leaked = [s for s in [*SECRETS, SLACK_PATH.rsplit("/", 1)[1]] if s in sent]
    assert not leaked, f"{len(leaked)} secret value(s) in the messages"


def test_the_fleet_page_shows_every_tenant_and_renders_in_chromium(ws, notified):
    page = ws.directory / ".release_state/fleet/index.html"
    text = page.read_text(encoding="utf-8")
    pin = ws.pin()["release_pin"]
    for node, tenants in TENANTS.items():
        assert f"<h2 id='{node}'>{node} " in text
        for entry in tenants:
            assert f"<b>{entry['name']}</b><br><span class='muted'>{entry['domain']}</span>" in text
    assert f"<code>{pin['digest'][:19]}</code>" in text
    assert "<script" not in text.lower()
    assert not [s for s in SECRETS if s in text], "a secret value on the fleet page"
    browser = ["chromium-headless-shell", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*browser, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    )
    production_rows = re.findall(r"<tr class=\"(\w+)\"><td><b>(\w+)</b>", dom.stdout)
    names = {t["name"] for node in PRODUCTION for t in TENANTS[node]}
    assert {name for level, name in production_rows if level == "ok"} >= names, production_rows
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "fleet-page.png"
    shot.unlink(missing_ok=True)
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000, "the screenshot looks empty"
