# SPDX-License-Identifier: GPL-3.0-or-later
"""watch_tenants as Ansible runs it on a host: a breach named with its evidence, a secret in a log line masked."""

from __future__ import annotations

import time

from ..module_utils.test_watch import Scripted, stamp
from .module_runner import run_module

SECRET = "sk-live-watch-0123456789"
TENANT = {"name": "acme", "domain": "acme.lab", "port": 3001, "secrets": {"WEBUI_SECRET_KEY": SECRET}}


class LiveScripted(Scripted):
    """The scripted engine on the real clock: the module sleeps for real, so the script runs at its first poll."""

    def log_lines_since(self, container: str, since: float) -> list:
        self.polls += 1
        for change in self.script.get(self.polls, []):
            change(self)
        return super().log_lines_since(container, since)


def logged_now(line: str):
    def change(engine):
        engine.logs.append((stamp(time.time()), line))

    return change


def test_a_breach_names_the_tenant_and_its_log_line_with_the_secret_masked(monkeypatch):
    engine = LiveScripted({2: [logged_now(f"CRITICAL cannot reach the provider with key {SECRET}")]})
    args = {"tenants": [TENANT], "containers": [{"name": "acme", "container": "openwebui-acme", "outcome": "replaced"}],
            "minutes": 0.1, "interval": 1, "access_log_dir": ""}  # fmt: skip
    result, output = run_module("watch_tenants", args, monkeypatch, engine=engine)
    assert result["breached"] is True, result
    (phrase,) = result["breaches"]["acme"]
    assert phrase.startswith("logged a line matching '\\\\bCRITICAL\\\\b': CRITICAL cannot reach the provider")
    assert SECRET not in output
    assert "********" in phrase, "the secret in the line is masked, the line still shown"
    assert result["changed"] is False
    assert result["polls"] == 2, "it stops at the first breach"


def test_nothing_to_watch_returns_at_once_and_check_mode_watches_nothing(monkeypatch):
    args = {"tenants": [TENANT], "containers": [], "minutes": 30}
    begin = time.monotonic()
    result, _output = run_module("watch_tenants", args, monkeypatch, engine=Scripted({}))
    assert (result["breached"], result["polls"]) == (False, 0)
    assert time.monotonic() - begin < 5
    checked, _output = run_module("watch_tenants", {**args, "_ansible_check_mode": True, "containers": [
        {"name": "acme", "container": "openwebui-acme"}]}, monkeypatch, engine=Scripted({}))  # fmt: skip
    assert checked["skipped"] is True
