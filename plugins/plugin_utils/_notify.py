# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Release notifications: which targets, what each event says, and the body each kind of target gets.

Pure logic for the controller (the pinned.release.notify action sends). A message is built from the
structured results of the collection's own modules, never from raw inventory, and is then masked against
every secret value the inventory holds, so a secret cannot reach a chat channel or a mailbox.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Optional
from urllib.parse import urlsplit

from ansible_collections.pinned.release.plugins.module_utils._format import short_digest
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.plugin_utils._reports import drift_row, rollout_lines
from ansible_collections.pinned.release.plugins.plugin_utils._waves import (
    RolloutShapeError,
    failure_budget,
    rollout_report_due,
    wave_stops_rollout,
)

EVENTS = ("candidate_tested", "pin_changed", "rollout", "rollback", "drift")
EMAIL_SECURE = ("always", "never", "try", "starttls")
SECRET_KEY_RE = re.compile(r"(?i)pass|secret|token|key|credential")
TARGETS_VARIABLE = "release_notify_targets"
# Inventory variables whose secret values no message or page may carry.
SECRET_SOURCES = ("release_tenants", "release_registry", "release_checklist_variables", TARGETS_VARIABLE)
STATUS_MARK = {"ok": "OK", "failed": "FAILED", "warning": "NOTICE"}


def _port(value: object) -> Optional[int]:
    try:
        port = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 else None


class BadTarget(ValueError):
    """What makes a target's entry unusable (the target is skipped)."""


@dataclass
class Target(ABC):
    """A notification target. Each type (TARGET_CLASSES) reads its own entry, says where it goes and sends."""

    name: str
    events: tuple = EVENTS
    type: ClassVar[str]
    # Sent from a thread side by side with the others (HTTP), or one after another by the action (a module call).
    side_by_side: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def from_entry(cls, name: str, events: tuple, entry: dict) -> Target:
        """The target an inventory entry describes; raises BadTarget saying what is wrong with it."""

    @abstractmethod
    def where(self) -> str:
        """Where it goes, without anything secret."""

    @abstractmethod
    def send(self, message: dict, timeout: int, post: Callable, mail: Callable) -> str:
        """Send ``message`` with ``post(url, body, headers, timeout)`` or ``mail(arguments)``; '' when the target
        took it, else why not."""


@dataclass
class WebhookTarget(Target):
    """An HTTP endpoint that is posted the message as JSON."""

    type: ClassVar[str] = "webhook"
    url: str = ""
    headers: dict = field(default_factory=dict)

    @classmethod
    def from_entry(cls, name: str, events: tuple, entry: dict) -> Target:
        url = str(entry.get("url") or "")
        parts = urlsplit(url)
        try:
            valid_port = parts.port is None or parts.port > 0
        except ValueError:
            valid_port = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not valid_port:
            raise BadTarget("has no valid http(s) url (like https://hooks.example.com/...)")
        headers = entry.get("headers") or {}
        if not isinstance(headers, dict):
            raise BadTarget("has headers that are not a mapping")
        return cls(name=name, events=events, url=url, headers={str(k): str(v) for k, v in headers.items()})

    def where(self) -> str:
        """The scheme and host only: the path of a Slack URL is its token."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"

    def body(self, message: dict) -> bytes:
        return json.dumps(message).encode()

    def send(self, message: dict, timeout: int, post: Callable, mail: Callable) -> str:
        return post(self.url, self.body(message), self.headers, timeout)


class SlackTarget(WebhookTarget):
    """A Slack-compatible incoming webhook: it is posted Slack's ``text`` (mrkdwn)."""

    type: ClassVar[str] = "slack"

    def body(self, message: dict) -> bytes:
        mark = {"ok": ":white_check_mark:", "failed": ":red_circle:", "warning": ":warning:"}[message["status"]]
        text = f"{mark} *{message['title']}*"
        if message["text"]:
            text += "\n```\n" + message["text"] + "\n```"
        text += f"\n_{message['operator']}, {message['at']}_"
        return json.dumps({"text": text}).encode()


@dataclass
class EmailTarget(Target):
    """Mailboxes, reached through community.general.mail."""

    type: ClassVar[str] = "email"
    side_by_side: ClassVar[bool] = False
    to: tuple = ()
    host: str = "localhost"
    port: int = 25
    sender: str = "pinned.release@localhost"
    username: Optional[str] = None
    password: Optional[str] = None
    secure: str = "try"

    @classmethod
    def from_entry(cls, name: str, events: tuple, entry: dict) -> Target:
        to = entry.get("to")
        to = [to] if isinstance(to, str) else to
        port = _port(entry.get("port", 25))
        secure = entry.get("secure", "try")
        if not to or not isinstance(to, list) or not all(isinstance(a, str) and "@" in a for a in to):
            raise BadTarget("needs to: one or more e-mail addresses")
        if port is None or secure not in EMAIL_SECURE:
            raise BadTarget(f"needs a port 1-65535 and secure one of {', '.join(EMAIL_SECURE)}")
        return cls(name=name, events=events, to=tuple(to), port=port, secure=secure,
                   host=str(entry.get("host") or cls.host), sender=str(entry.get("sender") or cls.sender),
                   username=entry.get("username"), password=entry.get("password"))  # fmt: skip

    def where(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def arguments(self, message: dict, timeout: int) -> dict:
        """Arguments for community.general.mail."""
        arguments = {
            "host": self.host,
            "port": self.port,
            "to": list(self.to),
            "sender": self.sender,
            "subject": f"[pinned.release] {STATUS_MARK[message['status']]}: {message['title']}",
            "body": f"{message['text']}\n\n-- {message['operator']}, {message['at']} ({message['event']})\n",
            "secure": self.secure,
            "timeout": timeout,
        }
        if self.username:
            arguments.update(username=self.username, password=self.password)
        return arguments

    def send(self, message: dict, timeout: int, post: Callable, mail: Callable) -> str:
        return mail(self.arguments(message, timeout))


TARGET_CLASSES = {target.type: target for target in (WebhookTarget, SlackTarget, EmailTarget)}


def _problem(index: int, entry: object, what: str) -> str:
    name = entry.get("name") if isinstance(entry, dict) and entry.get("name") else f"#{index + 1}"
    return f"notification target {name} in {TARGETS_VARIABLE} {what}; it is skipped"


def parse_targets(entries: object) -> tuple:
    """``(targets, problems)``: the usable targets, and one line per entry that is not (it is skipped)."""
    if entries in (None, ""):
        return [], []
    if not isinstance(entries, list):
        return [], [
            f"{TARGETS_VARIABLE} must be a list of targets, got {type(entries).__name__}: no notification is sent"
        ]
    targets, problems = [], []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(_problem(index, entry, f"must be a mapping, got {type(entry).__name__}"))
            continue
        kind = entry.get("type")
        target_class = TARGET_CLASSES.get(kind) if isinstance(kind, str) else None
        if target_class is None:
            problems.append(_problem(index, entry, f"has type {kind!r}: use one of {', '.join(TARGET_CLASSES)}"))
            continue
        events = entry.get("events", list(EVENTS))
        unknown = [e for e in events if e not in EVENTS] if isinstance(events, list) else [events]
        if unknown:
            problems.append(_problem(index, entry, f"lists unknown events {unknown}: use any of {', '.join(EVENTS)}"))
            continue
        name = str(entry.get("name") or f"{kind}-{index + 1}")
        try:
            targets.append(target_class.from_entry(name, tuple(events), entry))
        except BadTarget as bad:
            problems.append(_problem(index, entry, str(bad)))
    return targets, problems


def parse_timeout(value: object) -> tuple:
    """``(seconds, problem)``: a timeout of 1-60 s, or the default 5 s and why."""
    try:
        seconds = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = 0
    if 1 <= seconds <= 60:
        return seconds, None
    return 5, f"the notification timeout must be 1-60 seconds, got {value!r}: 5 s is used"


def secret_values(data: object, under_secret: bool = False) -> set:
    """Every string value in ``data`` that is a secret: under a key that names one, or in a ``secrets`` map."""
    found = set()
    if isinstance(data, dict):
        for key, value in data.items():
            secret = under_secret or bool(SECRET_KEY_RE.search(str(key))) or key == "secrets"
            found |= secret_values(value, secret)
    elif isinstance(data, (list, tuple)):
        for item in data:
            found |= secret_values(item, under_secret)
    elif under_secret and isinstance(data, (str, int)) and not isinstance(data, bool) and str(data):
        found.add(str(data))
    return found


def inventory_secrets(task_vars: dict, template, names: tuple = SECRET_SOURCES) -> set:
    """Secret values in the play hosts' ``names`` variables; ``template`` renders a variable (the action's templar)."""
    found = set()
    hostvars = task_vars.get("hostvars") or {}
    for host in task_vars.get("ansible_play_hosts_all") or []:
        for name in names:
            try:
                value = template(hostvars[host].get(name))
            except Exception:  # an undefined or broken variable has no secret to add
                value = None
            found |= secret_values(value)
    return found


def _name(image: object) -> str:
    """``repository:tag`` (or ``repository@sha256:0123456789ab``) of an image reference, for a title."""
    text = str(image or "?")
    name, _at, digest = text.partition("@")
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}@{short_digest(digest)}" if digest else name


def _candidate(facts: dict) -> tuple:
    hosts = facts.get("hosts") or {}
    passed = bool(facts.get("passed"))
    lines = []
    for host, outcome in sorted(hosts.items()):
        outcome = outcome or {}
        if outcome.get("passed"):
            lines.append(f"{host}: passed")
        else:
            failures = outcome.get("failures") or [outcome.get("error") or "not tested"]
            lines.append(f"{host}: FAILED: " + "; ".join(str(f) for f in failures))
    verdict = "passed its checklist" if passed else "FAILED its checklist"
    title = f"Candidate {_name(facts.get('image'))} ({short_digest(facts.get('digest'))}) {verdict} on {', '.join(sorted(hosts)) or 'no host'}"
    if facts.get("evidence"):
        lines.append(f"evidence: {facts['evidence']}")
    lines.append("promote.yml will pin it" if passed else "promote.yml will refuse this digest")
    return ("ok" if passed else "failed"), title, lines


def _pin(facts: dict) -> tuple:
    current, previous = facts.get("current") or {}, facts.get("previous") or {}
    title = (f"Production pin {current.get('repository', '?')}: {short_digest(previous.get('digest')) if previous.get('digest') else 'nothing'} -> "
             f"{short_digest(current.get('digest'))} ({current.get('tag') or 'no tag'})")  # fmt: skip
    lines = [f"reason: {current.get('reason') or '-'}", f"pinned: {current.get('image', '?')}"]
    return "ok", title, lines


def _host_counts(result: Optional[dict]) -> dict:
    counts = {"replaced": 0, "created": 0, "unchanged": 0, "put_back": 0, "down": 0, "not_attempted": 0}
    for entry in (result or {}).get("tenants") or []:
        outcome = entry.get("outcome")
        if outcome in counts:
            counts[outcome] += 1
        if outcome == "put_back" and "DOWN" in str(entry.get("standing", "")):
            counts["down"] += 1
    return counts


def _rollout(facts: dict) -> tuple:
    """A rollout's message, sent after the last wave or when a wave stops it: which hosts are done, put back (failed)
    and not reached, and each reached host's tenants. ``waves`` (the hosts of each wave), ``batch`` (the wave that
    has just run) and ``budget`` (its failure budget) say where it stands; without them a failure stopped it."""
    hosts = facts.get("hosts") or {}
    failures = {h: f for h, f in (facts.get("failures") or {}).items() if f}
    # Hosts Ansible dropped from the play (unreachable, or failed before the role could say why) failed too.
    for host in facts.get("dropped") or []:
        failures.setdefault(host, "unreachable, or failed before its rollout could report (see the run's output)")
    waves = [list(wave) for wave in facts.get("waves") or []]
    batch = list(facts.get("batch") or [])
    everyone = [h for wave in waves for h in wave] or sorted(set(hosts) | set(failures))
    done = [h for h in everyone if h not in failures and hosts.get(h) is not None]
    put_back = [h for h in everyone if h in failures]
    not_reached = [h for h in everyone if h not in failures and hosts.get(h) is None]
    lines = [f"{what} ({len(names)}): {', '.join(names)}"
             for what, names in (("done", done), ("put back", put_back), ("not reached", not_reached)) if names]  # fmt: skip
    for host in done + put_back:
        counts = _host_counts(hosts.get(host))
        summary = (f"{host}: {counts['replaced'] + counts['created']} replaced, {counts['unchanged']} up to date, "
                   f"{counts['put_back']} put back, {counts['down']} DOWN, {counts['not_attempted']} not attempted")  # fmt: skip
        if host in failures:
            summary += f"; FAILED: {failures[host]}"
        lines.append(summary)
        lines.extend(
            f"  {line}"
            for line in rollout_lines(hosts.get(host) or {})
            if not line.endswith("up to date") and " up to date on " not in line
        )
    down = sum(_host_counts(r)["down"] for r in hosts.values())
    image = _name(facts.get("image"))
    # The wave that has just run: the batch is its hosts less any that went unreachable.
    wave = next((number for number, hosts_of in enumerate(waves, start=1) if batch and set(batch) <= set(hosts_of)), 0)
    current = waves[wave - 1] if wave else batch
    where = f" in wave {wave} of {len(waves)}" if wave else ""
    failed_now = [h for h in current if h in failures]
    try:
        percent = failure_budget(facts.get("budget"))
    except RolloutShapeError:  # the play would not have started with it; say the strictest
        percent = 0
    stopped = bool(failures) and (not current or wave_stops_rollout(len(failed_now), len(current), percent))
    budget = f"within its failure budget ({percent}% of a wave)"
    if stopped:
        status = "failed"
        title = f"Rollout of {image} STOPPED{where}: failed on {', '.join(put_back)}" + (
            f", {down} tenant(s) DOWN" if down else ""
        )
    elif failures and not_reached:
        status = "warning"
        title = (
            f"Rollout of {image} going on after wave {wave} of {len(waves)}: failed on {', '.join(put_back)}, {budget}"
        )
    elif failures:
        status = "warning"
        title = f"Rollout of {image} finished on {len(done)} of {len(everyone)} host(s): failed on {', '.join(put_back)}, {budget}"
    else:
        status = "ok"
        title = f"Rollout of {image} finished on {len(done)} host(s)"
    return status, title, lines


def _rollback(facts: dict) -> tuple:
    failed = facts.get("failed_hosts") or []
    title = f"Rollback to {_name((facts.get('target') or {}).get('image'))}" + (
        f" FAILED on {', '.join(failed)}" if failed else " done"
    )
    lines = [f"reason: {facts.get('reason') or '-'}", str(facts.get("summary") or "")]
    return ("failed" if failed else "warning"), title, [line for line in lines if line]


def _drift(facts: dict) -> tuple:
    report = facts.get("report") or {}
    if report.get("drifted"):
        rows = report.get("rows") or []
        lines = [drift_row(row) for row in rows[:50]]
        if len(rows) > 50:
            lines.append(f"... and {len(rows) - 50} more (see {facts.get('report_path') or 'the drift report'})")
        hosts = sorted(h for h, v in (report.get("hosts") or {}).items() if (v or {}).get("drifted"))
        return "failed", f"Drift found on {', '.join(hosts) or 'the fleet'} against {_name(report.get('pin'))}", lines
    return "ok", f"Drift cleared: every checked host matches {_name(report.get('pin'))}", []


COMPOSERS = {
    "candidate_tested": _candidate,
    "pin_changed": _pin,
    "rollout": _rollout,
    "rollback": _rollback,
    "drift": _drift,
}


def due(event: str, facts: dict) -> bool:
    """Whether an event is told now: every event but a rollout wave that went well before the last one."""
    if event != "rollout" or not (facts or {}).get("waves"):
        return True
    waves = [list(wave) for wave in facts["waves"]]
    return rollout_report_due(waves, list(facts.get("batch") or []), facts.get("failures"))


def compose(event: str, facts: dict, operator: str, at: str, mask: SecretMask) -> dict:
    """The message for an event: ``{event, status, title, text, operator, at}``, every secret masked."""
    status, title, lines = COMPOSERS[event](facts or {})
    message = {
        "event": event,
        "status": status,
        "title": title,
        "text": "\n".join(lines),
        "operator": operator,
        "at": at,
    }
    return mask.apply(message, free_text=True)


def one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
