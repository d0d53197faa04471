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
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urlsplit

from ansible_collections.pinned.release.plugins.module_utils._format import short_digest
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.plugin_utils._reports import drift_row, rollout_lines

EVENTS = ("candidate_tested", "pin_changed", "rollout", "rollback", "drift")
TARGET_TYPES = ("webhook", "slack", "email")
EMAIL_SECURE = ("always", "never", "try", "starttls")
SECRET_KEY_RE = re.compile(r"(?i)pass|secret|token|key|credential")
TARGETS_VARIABLE = "release_notify_targets"
# Inventory variables whose secret values no message or page may carry.
SECRET_SOURCES = ("release_tenants", "release_registry", "release_checklist_variables", TARGETS_VARIABLE)


@dataclass
class Target:
    name: str
    type: str
    events: tuple = EVENTS
    url: str = ""
    headers: dict = field(default_factory=dict)
    to: tuple = ()
    host: str = "localhost"
    port: int = 25
    sender: str = "pinned.release@localhost"
    username: Optional[str] = None
    password: Optional[str] = None
    secure: str = "try"

    def where(self) -> str:
        """Where it goes, without anything secret: a webhook's scheme and host (a Slack URL path is its token)."""
        if self.type == "email":
            return f"smtp://{self.host}:{self.port}"
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"


def _problem(index: int, entry: object, what: str) -> str:
    name = entry.get("name") if isinstance(entry, dict) and entry.get("name") else f"#{index + 1}"
    return f"notification target {name} in {TARGETS_VARIABLE} {what}; it is skipped"


def _port(value: object) -> Optional[int]:
    try:
        port = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 else None


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
        if kind not in TARGET_TYPES:
            problems.append(_problem(index, entry, f"has type {kind!r}: use one of {', '.join(TARGET_TYPES)}"))
            continue
        events = entry.get("events", list(EVENTS))
        unknown = [e for e in events if e not in EVENTS] if isinstance(events, list) else [events]
        if unknown:
            problems.append(_problem(index, entry, f"lists unknown events {unknown}: use any of {', '.join(EVENTS)}"))
            continue
        target = Target(name=str(entry.get("name") or f"{kind}-{index + 1}"), type=kind, events=tuple(events))
        if kind in ("webhook", "slack"):
            url = str(entry.get("url") or "")
            parts = urlsplit(url)
            try:
                valid_port = parts.port is None or parts.port > 0
            except ValueError:
                valid_port = False
            if parts.scheme not in ("http", "https") or not parts.hostname or not valid_port:
                problems.append(_problem(index, entry, "has no valid http(s) url (like https://hooks.example.com/...)"))
                continue
            headers = entry.get("headers") or {}
            if not isinstance(headers, dict):
                problems.append(_problem(index, entry, "has headers that are not a mapping"))
                continue
            target.url, target.headers = url, {str(k): str(v) for k, v in headers.items()}
        else:
            to = entry.get("to")
            to = [to] if isinstance(to, str) else to
            port = _port(entry.get("port", 25))
            secure = entry.get("secure", "try")
            if not to or not isinstance(to, list) or not all(isinstance(a, str) and "@" in a for a in to):
                problems.append(_problem(index, entry, "needs to: one or more e-mail addresses"))
                continue
            if port is None or secure not in EMAIL_SECURE:
                problems.append(
                    _problem(index, entry, f"needs a port 1-65535 and secure one of {', '.join(EMAIL_SECURE)}")
                )
                continue
            target.to, target.port, target.secure = tuple(to), port, secure
            target.host = str(entry.get("host") or "localhost")
            target.sender = str(entry.get("sender") or target.sender)
            target.username, target.password = entry.get("username"), entry.get("password")
        targets.append(target)
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
    hosts = facts.get("hosts") or {}
    failures = {h: f for h, f in (facts.get("failures") or {}).items() if f}
    lines = []
    for host in sorted(set(hosts) | set(failures)):
        result = hosts.get(host)
        if result is None and host not in failures:
            lines.append(f"{host}: not reached (the rollout stopped before its batch)")
            continue
        counts = _host_counts(result)
        summary = (f"{host}: {counts['replaced'] + counts['created']} replaced, {counts['unchanged']} up to date, "
                   f"{counts['put_back']} put back, {counts['down']} DOWN, {counts['not_attempted']} not attempted")  # fmt: skip
        if host in failures:
            summary += f"; FAILED: {failures[host]}"
        lines.append(summary)
        lines.extend(
            f"  {line}"
            for line in rollout_lines(result or {})
            if not line.endswith("up to date") and " up to date on " not in line
        )
    down = sum(_host_counts(r)["down"] for r in hosts.values())
    image = _name(facts.get("image"))
    if failures:
        status = "failed"
        title = f"Rollout of {image} STOPPED: failed on {', '.join(sorted(failures))}" + (
            f", {down} tenant(s) DOWN" if down else ""
        )
    else:
        status = "ok"
        title = f"Rollout of {image} finished on {len(hosts)} host(s)"
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


STATUS_MARK = {"ok": "OK", "failed": "FAILED", "warning": "NOTICE"}


def webhook_body(target: Target, message: dict) -> bytes:
    """The JSON a target gets: the message itself (webhook), or Slack's ``text`` (mrkdwn) for an incoming webhook."""
    if target.type == "slack":
        mark = {"ok": ":white_check_mark:", "failed": ":red_circle:", "warning": ":warning:"}[message["status"]]
        text = f"{mark} *{message['title']}*"
        if message["text"]:
            text += "\n```\n" + message["text"] + "\n```"
        text += f"\n_{message['operator']}, {message['at']}_"
        return json.dumps({"text": text}).encode()
    return json.dumps(message).encode()


def email_arguments(target: Target, message: dict, timeout: int) -> dict:
    """Arguments for community.general.mail."""
    arguments = {
        "host": target.host,
        "port": target.port,
        "to": list(target.to),
        "sender": target.sender,
        "subject": f"[pinned.release] {STATUS_MARK[message['status']]}: {message['title']}",
        "body": f"{message['text']}\n\n-- {message['operator']}, {message['at']} ({message['event']})\n",
        "secure": target.secure,
        "timeout": timeout,
    }
    if target.username:
        arguments.update(username=target.username, password=target.password)
    return arguments


def one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
