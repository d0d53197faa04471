# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test evidence on the controller: one record per tested digest, where it lives, and the gate that reads it.

Built by test_deploy, read by promote (through pin_digest) and production_deploy; the gate is
``_pins.check_evidence``, the same code pin_digest runs, so the rule lives in one place.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._files import FileChangeError, read_text
from ansible_collections.pinned.release.plugins.module_utils._pins import PinError, check_evidence
from ansible_collections.pinned.release.plugins.module_utils._reference import ImageReferenceError, parse_digest

SCHEMA = 1


MEMORY_FIELDS = ("memory_bytes", "memory_after_bytes", "memory_limit_bytes")


def evidence_path(evidence_dir: str, digest: str) -> str:
    """``<evidence_dir>/sha256-<hex>.json``: found by digest, wherever the pin was made."""
    return os.path.join(evidence_dir, parse_digest(digest).replace(":", "-") + ".json")


def host_record(outcome: Optional[dict]) -> dict:
    """One test host's part of a record, from what test_deploy registered on it.

    ``outcome``: ``{tested, deploy_error, checklist_before, checklist}`` - tested is false when the host never got
    to deploy the candidate (refused by its lock, unreachable, the pull failed): such a host proves nothing either
    way. Checks before the deploy are named ``before the upgrade: ...``; a skipped check neither passes nor fails.
    """
    outcome = outcome or {}
    tenants: dict = {}
    for key, prefix in (("checklist_before", "before the upgrade: "), ("checklist", "")):
        for tenant in (outcome.get(key) or {}).get("tenants") or []:
            checks = tenants.setdefault(tenant["name"], {"passed": True, "checks": []})["checks"]
            for check in tenant.get("checks") or []:
                entry = {
                    "name": prefix + str(check.get("name")),
                    "passed": bool(check.get("passed")),
                    "detail": check.get("detail"),
                }
                if check.get("skipped"):
                    entry["skipped"] = True
                # a memory check's readings: the figures a later release is compared with
                entry.update({k: check[k] for k in MEMORY_FIELDS if isinstance(check.get(k), int)})
                checks.append(entry)
    for entry in tenants.values():
        ran = [c for c in entry["checks"] if not c.get("skipped")]
        entry["passed"] = bool(ran) and all(c["passed"] for c in ran)
    error = outcome.get("deploy_error")
    passed = bool(outcome.get("tested")) and not error and bool(tenants) and all(t["passed"] for t in tenants.values())
    failures = [
        f"{name}: {c['name']}: {c['detail']}" for name, t in tenants.items() for c in t["checks"] if not c["passed"]
    ]
    if not error and not tenants and outcome.get("tested"):
        failures.append("no check ran (an empty checklist, or no tenant on this host, proves nothing)")
    return {"tested": bool(outcome.get("tested")), "passed": passed, "deploy_error": error, "failures": failures,
            "tenants": tenants}  # fmt: skip


def _verdicts(hosts: object) -> Optional[dict]:
    """What a record says per host, tenant and check: passed or not, skipped, the deploy error; not the details."""
    try:
        return {
            host: (record["passed"], record.get("deploy_error"),
                   {tenant: [(c["name"], c["passed"], bool(c.get("skipped"))) for c in entry["checks"]]
                    for tenant, entry in record["tenants"].items()})
            for host, record in hosts.items()
        }  # fmt: skip
    except (AttributeError, KeyError, TypeError):
        return None  # not a record this version wrote: write a new one


NOT_CHECKED = {"verified": False, "reason": "not checked (no release_signature policy)"}


def signature_summary(resolved: dict) -> dict:
    """What the evidence says of the candidate's signature: its signer, why none was accepted, or that none was checked.

    ``resolved``: resolve_digest's result; it has ``signature`` only when the test deploy verified one.
    """
    signature = resolved.get("signature")
    if not isinstance(signature, dict):
        return dict(NOT_CHECKED)
    if signature.get("verified"):
        return {"verified": True, **{key: signature.get(key) for key in ("issuer", "subject", "bundle_digest")}}
    return {"verified": False, "reason": str(signature.get("reason") or "no signature accepted")}


def signature_refusal(record_text: str, path: str) -> Optional[str]:
    """Why the record at ``path`` does not prove a verified signature (one line saying what to do), or None."""
    redo = "set release_signature in inventory and test it again (deploy.yml -l test) so its signer is recorded"
    try:
        signature = (json.loads(record_text) or {}).get("signature")
    except (ValueError, AttributeError):
        return f"evidence {path} is not a test record: {redo}"
    if not isinstance(signature, dict) or signature.get("verified") is not True:
        why = signature.get("reason") if isinstance(signature, dict) else "no signature recorded"
        return f"evidence {path} has no verified signature ({why}), and release_signature.required is true: {redo}"
    return None


def evidence_record(outcomes: dict, resolved: dict, candidate: str, operator: str, now: str,
                    previous: Optional[dict] = None, from_digest: Optional[str] = None) -> Optional[dict]:  # fmt: skip
    """The record for the resolved digest, or None when no host actually tested it (then nothing is written).

    ``from_digest``: the production pin the test hosts were brought to before the candidate (None when nothing was
    pinned yet): the upgrade this record proves, which promote compares with the pin it would replace. A re-test with
    the same results from the same pin keeps the earlier record's time, so a second run changes nothing.
    """
    hosts = {host: host_record(outcome) for host, outcome in sorted(outcomes.items())}
    signature = signature_summary(resolved)
    tested = {host: record for host, record in hosts.items() if record["tested"]}
    if not tested:
        return None
    same = (
        previous is not None
        and previous.get("digest") == resolved["digest"]
        and previous.get("from_digest") == from_digest
        and _verdicts(previous.get("hosts")) == _verdicts(tested)
        and previous.get("signature") == signature
    )
    if same:
        # Details carry measurements (an SSE check's spread in ms): the verdicts decide whether anything changed.
        tested = previous["hosts"]
    return {
        "schema": SCHEMA,
        "image": resolved["image_ref"],
        "digest": resolved["digest"],
        "tag": resolved.get("tag"),
        "candidate": candidate,
        "from_digest": from_digest,
        "signature": signature,
        "operator": previous.get("operator") if same else operator,
        "finished_at": previous.get("finished_at") if same else now,
        "passed": all(record["passed"] for record in tested.values()),
        "hosts": tested,
        "not_tested": sorted(set(hosts) - set(tested)),
    }


def evidence_gate(evidence_dir: str, digest: str) -> Optional[str]:
    """Why ``digest`` may not go to production (no passing record for it), or None when it may."""
    try:
        path = evidence_path(evidence_dir, digest)
    except ImageReferenceError as exc:
        return str(exc)
    text = read_text(path, "evidence")
    if text is None:
        return f"{digest} has no test evidence (looked for {path}): run deploy.yml -l test for it"
    try:
        check_evidence(text, path, digest)
    except PinError as exc:
        return str(exc)
    return None


# What promote needs of the latest tested candidate (test_deploy writes it next to the records).
CANDIDATE_KEYS = ("repository", "tag", "digest", "evidence", "finished_at")


def read_candidate(path: str, require_signature: bool = False) -> dict:
    """The latest tested candidate test_deploy wrote at ``path``, or ``{"error": one line}`` saying what to do.

    ``require_signature``: also refuse it unless its evidence record names a verified signer.
    """
    redo = "run ansible-playbook playbooks/deploy.yml -l test"
    try:
        text = read_text(path, "the tested candidate")
    except FileChangeError as exc:
        return {"error": f"{exc}: fix it, or {redo} again"}
    if not (text or "").strip():
        return {"error": f"nothing tested yet ({path} is missing): {redo}"}
    try:
        candidate = json.loads(text)
    except ValueError as exc:
        return {"error": f"{path} is not JSON ({exc.msg} at line {exc.lineno}): {redo} again to rewrite it"}
    if not isinstance(candidate, dict):
        return {
            "error": f"{path} holds a {type(candidate).__name__}, not the candidate test_deploy writes: {redo} again"
        }
    missing = [key for key in CANDIDATE_KEYS if not isinstance(candidate.get(key), str) or not candidate[key]]
    if missing:
        return {
            "error": f"{path} has no {', '.join(missing)}: it is not the candidate test_deploy writes; {redo} again"
        }
    if require_signature:
        record_path = candidate["evidence"]
        try:
            record_text = read_text(record_path, "evidence")
        except FileChangeError as exc:
            return {"error": f"{exc}: fix it, or {redo} again"}
        if record_text is None:
            return {"error": f"{candidate['digest']} has no test evidence (looked for {record_path}): {redo}"}
        refusal = signature_refusal(record_text, record_path)
        if refusal:
            return {"error": refusal}
    return candidate
