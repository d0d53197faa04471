# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet page: one static HTML file (no script, no external asset) of every host and tenant.

Each host's last observed state is kept as JSON next to the page (``hosts/<host>.json``), so a run that touches
some hosts redraws the whole fleet, the others as last seen (with the time they were seen).
"""

from __future__ import annotations

import html
import os
from collections import Counter
from datetime import datetime, timezone
from typing import Iterable, Optional

from ansible_collections.pinned.release.plugins.module_utils._format import short_digest
from ansible_collections.pinned.release.plugins.module_utils._fs import write_atomic
from ansible_collections.pinned.release.plugins.module_utils._journal import read_json, write_json
from ansible_collections.pinned.release.plugins.plugin_utils._evidence import evidence_path

HEALTH_CLASS = {"healthy": "ok", "starting": "warn", None: "ok"}
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2433;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5b6475;margin-bottom:16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#eef1f5;font-weight:600}
code{font:12px ui-monospace,monospace}
table.tenants{table-layout:fixed}td{overflow-wrap:anywhere}
.tenants th:nth-child(1){width:30%}.tenants th:nth-child(2){width:22%}.tenants th:nth-child(3){width:13%}
.tenants th:nth-child(4){width:23%}.tenants th:nth-child(5){width:12%}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}
.card.ok,.badge.ok{background:#d8f3df;color:#11662c}.badge.cand{background:#dbe9ff;color:#1c4a9b}
.card.warn,.badge.warn{background:#fff1c7;color:#7a5600}.card.bad,.badge.bad{background:#fbd9d9;color:#9b1c1c}
tr.bad td{background:#fff4f4}tr.warn td{background:#fffaeb}
tr.bad td:first-child{border-left:4px solid #d33}tr.warn td:first-child{border-left:4px solid #e0a800}
tr.ok td:first-child{border-left:4px solid #2ea44f}
summary{font-size:17px;font-weight:600;margin:28px 0 8px;cursor:pointer}summary .hosts{font-size:14px;font-weight:400}
.muted{color:#7a8294}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _parse(when: Optional[str]) -> Optional[datetime]:
    if not when:
        return None
    try:
        parsed = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def age(when: Optional[str], now: datetime) -> str:
    """``3 min``, ``5 h``, ``2 d`` since ``when`` (ISO 8601), or ``-``."""
    moment = _parse(when)
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def store_host(store_dir: str, host: str, status: Optional[list], failure: Optional[str], drift_rows: Optional[list],
               observed_at: str) -> None:  # fmt: skip
    """Record what was seen of a host now; a failure without a status keeps the last status it had."""
    path = os.path.join(store_dir, f"{host}.json")
    previous = read_json(path, "fleet page host state") or {}
    record = {
        "host": host,
        "observed_at": observed_at if status is not None else previous.get("observed_at"),
        "tenants": status if status is not None else previous.get("tenants") or [],
        "failure": failure,
        "drift": drift_rows if drift_rows is not None else previous.get("drift") or [],
        "drift_checked_at": observed_at if drift_rows is not None else previous.get("drift_checked_at"),
    }
    os.makedirs(store_dir, mode=0o755, exist_ok=True)
    write_json(path, record, 0o644)


def load_hosts(store_dir: str) -> dict:
    hosts = {}
    if os.path.isdir(store_dir):
        for name in sorted(os.listdir(store_dir)):
            if name.endswith(".json"):
                record = read_json(os.path.join(store_dir, name), "fleet page host state")
                if record and record.get("host"):
                    hosts[record["host"]] = record
    return hosts


def candidate_hosts(groups: dict) -> list:
    """The hosts that run candidates: the inventory group ``test``; a host also in ``production`` is held to the pin."""
    return sorted(set(groups.get("test") or []) - set(groups.get("production") or []))


def _tenant_down(tenant: dict) -> bool:
    return tenant.get("status") != "running" or tenant.get("health") not in (None, "healthy", "starting")


def _off_pin(tenant: dict, pin: dict) -> bool:
    return tenant.get("digest") != pin.get("digest")


def host_problems(record: dict, pin: dict, on_test: bool = False) -> int:
    """How much is wrong on a host: a failed last run, drift, tenants down, or (a production host) tenants off the pin.

    0: healthy, folded. A test host runs candidates: off the pin is what it is for.
    """
    tenants = record.get("tenants") or []
    return (bool(record.get("failure")) + len(record.get("drift") or []) + sum(_tenant_down(t) for t in tenants)
            + (0 if on_test else sum(_off_pin(t, pin) for t in tenants)))  # fmt: skip


def _tag_of(digest: Optional[str], pin: dict, history: list) -> str:
    for entry in [pin, *history]:
        if digest and entry.get("digest") == digest and entry.get("tag"):
            return str(entry["tag"])
    return ""


def _since(tenant: dict, now: datetime) -> str:
    """``up 10 min`` for a running tenant; ``down 3 h`` (since its container stopped) for one that is not."""
    if tenant.get("status") == "running":
        return f"up {age(tenant.get('started_at'), now)}"
    stopped = tenant.get("finished_at")
    if not stopped or _parse(stopped) is None or _parse(stopped).year < 2000:  # Docker's zero time: it never ran
        return "down" if tenant.get("status") != "absent" else "no container"
    return f"down {age(stopped, now)}"


def _image(version: Optional[str], digest: Optional[str]) -> str:
    """``0.12.4 · <code>sha256:0123456789ab</code>``: the app version its image declares, when it does, and the digest."""
    code = f"<code>{_e(short_digest(digest))}</code>"
    return f"{_e(version)} · {code}" if version else code


def _test_heading(record: dict, pin: dict) -> str:
    """What a test host runs: ``test: running candidate 0.12.5 · sha256:…``, or the pin."""
    tenants = record.get("tenants") or []
    candidates = {t["digest"]: t.get("version") for t in tenants if t.get("digest") and _off_pin(t, pin)}
    if candidates:
        what = "running candidate " + ", ".join(_image(candidates[d], d) for d in sorted(candidates))
    else:
        what = "running the pin" if any(t.get("digest") for t in tenants) else "no tenant running"
    return f"<span class='badge cand'>test: {what}</span>"


def _tenant_row(tenant: dict, pin: dict, history: list, now: datetime, on_test: bool, drift_rows: int = 0) -> str:
    """One tenant's row; ``drift_rows``: how many of the host's drift rows are about its container."""
    health, status, digest = tenant.get("health"), tenant.get("status"), tenant.get("digest")
    if status != "running":
        health_level, state = "bad", status or "absent"
    else:
        health_level, state = HEALTH_CLASS.get(health, "bad"), health or "running"
    on_pin = bool(digest) and digest == pin.get("digest")
    candidate = on_test and bool(digest) and not on_pin
    # The row's colour: its health, and a healthy tenant off the pin or drifted warns.
    level = "warn" if health_level == "ok" and ((not on_pin and not candidate) or drift_rows) else health_level
    badge = ("ok", "on the pin") if on_pin else ("cand", "candidate") if candidate else ("warn", "not on the pin")
    drift_badge = f" <span class='badge bad'>drift ({drift_rows})</span>" if drift_rows else ""
    version = tenant.get("version") or None
    tag = _tag_of(digest, pin, history)
    change = tenant.get("last_change") or {}
    snaps = tenant.get("snapshots") or {}
    deploy = (f"{_e(change.get('operator') or '?')}, {age(change.get('time'), now)} ago<br>"
              f"<span class='muted'>{_e(change.get('reason') or '')} ({_e(change.get('result') or '')})</span>"
              if change else "<span class='muted'>none recorded</span>")  # fmt: skip
    return (
        f"<tr class='{level}'><td><b>{_e(tenant.get('name'))}</b><br><span class='muted'>{_e(tenant.get('domain'))}</span></td>"
        f"<td>{_image(version, digest)}{' ' + _e(tag) if tag and tag != version else ''}<br>"
        f"<span class='badge {badge[0]}'>{badge[1]}</span>"
        f"{drift_badge}</td>"
        f"<td><span class='badge {health_level}'>{_e(state)}</span><br><span class='muted'>{_since(tenant, now)}</span></td>"
        f"<td>{deploy}</td>"
        f"<td>{_e(snaps.get('count', 0))}<br><span class='muted'>newest {age(snaps.get('newest_at'), now)} ago</span></td></tr>"
    )  # fmt: skip


def render(hosts: dict, pin: dict, history: list, evidence_dir: str, page_dir: str, now: datetime,
           test_hosts: Iterable = ()) -> str:  # fmt: skip
    """The page, from the stored host states, the pin and its history; ``test_hosts`` run candidates, not the pin."""
    pin, history, on_test = pin or {}, history or [], set(test_hosts)
    tenants = [t for record in hosts.values() for t in record.get("tenants") or []]
    down = sum(1 for t in tenants if _tenant_down(t))
    off_pin = sum(_off_pin(t, pin) for host, r in hosts.items() if host not in on_test for t in r.get("tenants") or [])
    drifted = sum(1 for record in hosts.values() if record.get("drift"))
    failed = sum(1 for record in hosts.values() if record.get("failure"))

    def evidence_link(digest: Optional[str]) -> str:
        if not digest or not evidence_dir:
            return "-"
        path = evidence_path(evidence_dir, digest)
        if not os.path.exists(path):
            return "<span class='muted'>none</span>"
        return f"<a href='{_e(os.path.relpath(path, page_dir))}'>evidence</a>"

    def card(label: str, value: int, bad: bool) -> str:
        return f"<div class='card {'bad' if bad else 'ok'}'><b>{value}</b>{_e(label)}</div>"

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Fleet - {_e(short_digest(pin.get('digest')))}</title><style>{STYLE}</style></head><body>",
        "<h1>Fleet</h1>",
        f"<div class='sub'>Pin <code>{_e(pin.get('repository') or pin.get('image') or 'none')}</code> "
        f"<code>{_e(short_digest(pin.get('digest')))}</code> {_e(pin.get('tag') or '')} - pinned {age(pin.get('pinned_at'), now)} ago"
        f"{' (a rollback)' if pin.get('kind') == 'rollback' else ''}: {_e(pin.get('reason') or '')} - "
        f"{evidence_link(pin.get('digest'))}. Page written {_e(now.strftime('%Y-%m-%d %H:%M UTC'))}.</div>",
        "<div class='cards'>",
        card("hosts", len(hosts), failed > 0),
        card("tenants", len(tenants), False),
        card("down or unhealthy", down, down > 0),
        card("not on the pin", off_pin, off_pin > 0),
        card("hosts with drift", drifted, drifted > 0),
        "</div>",
    ]  # fmt: skip
    # Problems first (the most first), then the healthy hosts folded: at 20 hosts the page opens on what is wrong.
    # Then the test hosts (what they run is the candidate a release is about), then the rest.
    problems = {host: host_problems(record, pin, host in on_test) for host, record in hosts.items()}
    ranked = sorted(hosts.items(), key=lambda item: (-problems[item[0]], item[0] not in on_test, item[0]))
    healthy = [host for host, _record in ranked if not problems[host] and host not in on_test]
    for host, record in ranked:
        seen = record.get("observed_at")
        if healthy and host == healthy[0]:
            parts.append(f"<details><summary>{len(healthy)} healthy host(s): "
                         f"<span class='hosts'>{_e(', '.join(healthy))}</span></summary>")  # fmt: skip
        parts.append(f"<h2 id='{_e(host)}'>{_e(host)} {_test_heading(record, pin) + ' ' if host in on_test else ''}"
                     f"<span class='muted'>seen {age(seen, now)} ago</span></h2>")  # fmt: skip
        if record.get("failure"):
            parts.append(f"<p><span class='badge bad'>last run failed</span> {_e(record['failure'])}</p>")
        parts.append(
            "<table class='tenants'><tr><th>Tenant</th><th>Version · digest</th><th>Health</th><th>Last deploy</th>"
            "<th>Snapshots</th></tr>"
        )
        drifted = Counter(row.get("container") for row in record.get("drift") or [])
        parts.extend(_tenant_row(t, pin, history, now, host in on_test, drifted[t.get("container")])
                     for t in record.get("tenants") or [])  # fmt: skip
        parts.append("</table>")
        if record.get("drift"):
            parts.append(
                f"<p><span class='badge bad'>drift</span> found {age(record.get('drift_checked_at'), now)} ago:</p><ul>"
            )
            parts.extend(f"<li>{_e(row.get('container'))} {_e(row.get('field'))}: expected <code>{_e(row.get('expected'))}</code>, "
                         f"actual <code>{_e(row.get('actual'))}</code></li>" for row in record["drift"])  # fmt: skip
            parts.append("</ul>")
    if healthy:
        parts.append("</details>")
    parts.append("<h2>Pin history</h2><table><tr><th>Digest</th><th>Tag</th><th>Pinned</th><th>Until</th><th>Reason</th>"
                 "<th>Evidence</th></tr>")  # fmt: skip
    for entry in [dict(pin, unpinned_at=None), *history] if pin else history:
        parts.append(
            f"<tr><td><code>{_e(short_digest(entry.get('digest')))}</code></td>"
            # a rollback pin has no tag of its own: the tag its digest had when it was first pinned
            f"<td>{_e(entry.get('tag') or _tag_of(entry.get('digest'), {}, history))}"
            f"{' (rollback)' if entry.get('kind') == 'rollback' else ''}</td>"
            f"<td>{_e(entry.get('pinned_at'))}</td><td>{_e(entry.get('unpinned_at') or 'now')}</td>"
            f"<td>{_e(entry.get('reason'))}</td><td>{evidence_link(entry.get('digest'))}</td></tr>"
        )
    parts.append("</table></body></html>\n")
    return "".join(parts)


def write_page(path: str, content: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o755, exist_ok=True)
    write_atomic(path, content, 0o644)
