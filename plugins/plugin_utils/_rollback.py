# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An emergency rollback on the controller: which digest to go back to, and the incident it leaves on record."""

from __future__ import annotations

from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._format import markdown_cell, short_digest
from ansible_collections.pinned.release.plugins.module_utils._reference import (
    ImageReferenceError,
    parse_pinned_reference,
)


def rollback_target(pin: Optional[dict], history: Optional[list], asked: Optional[str] = None,
                    away_from: Optional[str] = None) -> dict:  # fmt: skip
    """``{image, digest, why}``: the asked reference, else the pin when it is itself a rollback (a second run
    re-asserts it instead of rolling forward), else the newest history entry. ``error`` says why there is none.

    ``away_from``: a digest that has just failed (the post-release watch): the newest pin of the history that is not
    it, whatever the pin's kind, so a release that breaches is never "rolled back" onto itself.
    """
    if away_from and not asked:
        for entry in history if isinstance(history, list) else []:
            try:
                ref = parse_pinned_reference(str(entry.get("image") or "")) if isinstance(entry, dict) else None
            except ImageReferenceError:
                continue  # a hand-edited entry that is no pinned reference is no place to go back to
            if ref is not None and ref.digest != away_from and entry.get("digest") in (None, ref.digest):
                return {"image": ref.by_digest, "digest": ref.digest,
                        "why": f"the newest pin before {short_digest(away_from)}"}  # fmt: skip
        return {"error": f"the pin history has no pinned digest other than {short_digest(away_from)} to roll back to: "
                         "roll back by hand (rollback.yml -e rollback_to=repository@sha256:...)"}  # fmt: skip
    if asked:
        try:
            ref = parse_pinned_reference(asked)
        except ImageReferenceError as exc:
            return {"error": f"rollback_to: {exc}"}
        return {"image": ref.by_digest, "digest": ref.digest, "why": "asked for (rollback_to)"}
    pin = pin if isinstance(pin, dict) else {}
    history = history if isinstance(history, list) else []
    if pin.get("kind") == "rollback" and pin.get("image"):
        return {"image": pin["image"], "digest": pin["digest"], "why": "the pin is already this rollback"}
    if history and isinstance(history[0], dict) and history[0].get("image"):
        return {"image": history[0]["image"], "digest": history[0]["digest"], "why": "the previous pin"}
    return {"error": "the pin has no history to roll back to: give -e rollback_to=repository@sha256:..."}


def host_outcome(result: Optional[dict], failure: Optional[str]) -> dict:
    """What one host's rollback did, from its tenant_result (the tenant role's documented result)."""
    result = result if isinstance(result, dict) else {}
    tenants = result.get("tenants") or []
    return {
        "ok": not failure,
        "failure": failure,
        "changed": [t["name"] for t in tenants if t.get("outcome") in ("replaced", "created")],
        "from": sorted({t.get("previous_digest") for t in tenants if t.get("previous_digest")}),
        "restored": [
            {
                "tenant": t["name"],
                "snapshot": t.get("restored_from"),
                "set_aside": t.get("set_aside"),
                "lost_writes": t.get("lost_writes") or [],
            }
            for t in tenants
            if t.get("restored_from")
        ],
    }


def incident(target: dict, reason: str, started_at: str, operator: str, outcomes: dict, repin: Optional[dict]) -> dict:
    """``{record, row, summary}``: whether this rollback is an incident to record, its table row and a summary."""
    failed = {host: o["failure"] for host, o in outcomes.items() if not o["ok"]}
    changed = {host: o["changed"] for host, o in outcomes.items() if o["changed"]}
    restored = [r for o in outcomes.values() for r in o["restored"]]
    repin = repin or {}
    from_digests = sorted({d for o in outcomes.values() for d in o["from"] if d != target["digest"]})
    results = [
        f"{host}: {'ok' if o['ok'] else 'FAILED (' + str(o['failure'])[:200] + ')'}"
        for host, o in sorted(outcomes.items())
    ]
    result = ", ".join(results)
    if restored:
        lost = sum(len(r["lost_writes"]) for r in restored)
        result += (f"; data restored for {', '.join(r['tenant'] for r in restored)} ({lost} file(s) written since the "
                   "upgrade not carried over, kept aside)")  # fmt: skip
    if repin.get("changed") and repin.get("registry_verified") is False:
        why = " ".join(str(repin.get("registry_error") or "unreachable").split())[:200]
        result += f"; re-pinned from the pin history without the registry ({why})"
    if repin.get("failed"):
        result += f"; RE-PIN FAILED ({repin.get('msg', '')[:200]}): the next deploy would bring the bad digest back"
    record = bool(failed or changed or repin.get("changed") or repin.get("failed"))
    cells = (started_at, ", ".join(short_digest(d) for d in from_digests), short_digest(target["digest"]),
             ", ".join(sorted(outcomes)), operator, reason, result)  # fmt: skip
    row = "| " + " | ".join(markdown_cell(c) for c in cells) + " |"
    summary = (f"rollback to {target['image']}: {result}; pin "
               f"{'re-pinned' if repin.get('changed') else 'FAILED to re-pin' if repin.get('failed') else 'unchanged'}")  # fmt: skip
    return {"record": record, "row": row, "summary": summary, "failed_hosts": sorted(failed)}
