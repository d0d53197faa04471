# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pin file (a group_vars file), its history, the evidence gate, and rewrites of legacy files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    HAS_YAML = False

from ansible_collections.pinned.release.plugins.module_utils._format import markdown_cell, short_digest
from ansible_collections.pinned.release.plugins.module_utils._reference import (
    DOCKER_HUB,
    ImageReference,
    parse_pinned_reference,
)

PIN_KEY = "release_pin"
HISTORY_KEY = "release_pin_history"
HEADER = (
    "# Managed by pinned.release.pin_digest: do not edit by hand.\n"
    "# Change it with playbooks/promote.yml (or rollback.yml); history is newest first.\n"
)


class PinError(ValueError):
    """The pin cannot change as asked; nothing was written. The message says what to do."""


# ------------------------------------------------------------------ pin file


def load_pin_file(text: Optional[str], path: str) -> tuple:
    """(pin or None, history list) from the pin file's text; None text means no file yet."""
    if text is None or not text.strip():
        return None, []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PinError(f"pin file {path} is not valid YAML{where}: {problem}; fix or restore it (git)") from exc
    if data is None:
        return None, []
    if not isinstance(data, dict):
        raise PinError(f"pin file {path} has unknown structure: expected a mapping with {PIN_KEY} and {HISTORY_KEY}")
    unknown = sorted(set(data) - {PIN_KEY, HISTORY_KEY})
    if unknown:
        raise PinError(f"pin file {path} has unknown structure: unexpected key(s) {', '.join(map(str, unknown))}")
    pin = data.get(PIN_KEY)
    history = data.get(HISTORY_KEY) or []
    if pin is not None:
        _check_entry(pin, path, PIN_KEY)
    if not isinstance(history, list):
        raise PinError(f"pin file {path} has unknown structure: {HISTORY_KEY} must be a list")
    for number, entry in enumerate(history, 1):
        _check_entry(entry, path, f"{HISTORY_KEY} entry {number}")
    return pin, history


def _check_entry(entry: object, path: str, where: str) -> None:
    if not isinstance(entry, dict) or not entry.get("image") or not entry.get("digest"):
        raise PinError(f"pin file {path} has unknown structure: {where} needs at least image and digest")
    try:
        ref = parse_pinned_reference(str(entry["image"]))
    except ValueError as exc:
        raise PinError(f"pin file {path}: {where} has an unusable image: {exc}") from exc
    if ref.digest != entry["digest"]:
        raise PinError(f"pin file {path}: {where} image {entry['image']} disagrees with its digest {entry['digest']}")


if HAS_YAML:

    class _IndentedDumper(yaml.SafeDumper):
        """Lists indented under their key, as yamllint and ansible-lint expect in an inventory."""

        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)


def render_pin_file(pin: Optional[dict], history: list) -> str:
    body = yaml.dump(
        {PIN_KEY: pin, HISTORY_KEY: history},
        Dumper=_IndentedDumper,
        sort_keys=False,
        default_flow_style=False,
        width=1000,
    )
    return HEADER + "---\n" + body


# ------------------------------------------------------------------ evidence


NOT_RECORDED = object()  # a pin change whose caller did not say what is pinned now


def check_evidence(record_text: str, path: str, digest: str, pinned_now: object = NOT_RECORDED) -> dict:
    """A summary of a passing test record for exactly ``digest``, or PinError saying why not.

    ``pinned_now``: the digest pinned now (None: nothing yet). A record that says which pin it tested the upgrade
    from (``from_digest``) must name that one: it proves the upgrade production will take, not another."""
    try:
        record = json.loads(record_text)
    except ValueError as exc:
        raise PinError(f"evidence {path} is not valid JSON: {exc}") from exc
    if not isinstance(record, dict) or "digest" not in record or "passed" not in record:
        raise PinError(f"evidence {path} is not a test record (needs digest and passed)")
    if record["digest"] != digest:
        raise PinError(
            f"evidence {path} is for {record['digest']}, not {digest}: test this exact digest (deploy.yml -l test) first"
        )
    if pinned_now is not NOT_RECORDED and "from_digest" in record and record["from_digest"] != pinned_now:
        raise PinError(
            f"evidence {path} tested the upgrade from {record['from_digest'] or 'nothing'}, but production is pinned to "
            f"{pinned_now or 'nothing'} now: test {digest} again (deploy.yml -l test) so the upgrade it proves is the one "
            "production will take"
        )
    checks = list(_iter_checks(record))
    failed = [c for c in checks if not c["passed"]]
    if not record["passed"] or failed:
        first = f" (first: {failed[0]['where']}: {failed[0]['name']})" if failed else ""
        raise PinError(
            f"evidence {path} says the checklist failed for {digest}: {len(failed)} of {len(checks)} checks failed{first}"
        )
    if not checks:
        raise PinError(f"evidence {path} records no checks for {digest}: an empty checklist proves nothing")
    return {
        "record": path,
        "passed": True,
        "checks": len(checks),
        "hosts": sorted((record.get("hosts") or {}).keys()),
        "finished_at": record.get("finished_at"),
        "operator": record.get("operator"),
        # who signed the digest, as the test deploy verified it (production trusts this, it does not re-verify)
        "signature": record.get("signature"),
    }


def _iter_checks(record: dict):
    for host, host_result in sorted((record.get("hosts") or {}).items()):
        for tenant, tenant_result in sorted((host_result.get("tenants") or {}).items()):
            for check in tenant_result.get("checks") or []:
                if check.get("skipped"):  # nothing to carry over on a fresh tenant: not a check that ran
                    continue
                yield {"where": f"{host}/{tenant}", "name": check.get("name", "?"), "passed": bool(check.get("passed"))}


# ------------------------------------------------------------------ planning a pin change


@dataclass
class PinPlan:
    pin: Optional[dict]
    history: list
    changed: bool


PIN_KINDS = ("release", "rollback")


def plan_pin(
    current: Optional[dict],
    history: list,
    ref: ImageReference,
    *,
    reason: Optional[str],
    now: str,
    evidence: Optional[dict] = None,
    forced: bool = False,
    kind: str = "release",
    history_limit: int = 50,
) -> PinPlan:
    """The pin and history after pinning ``ref``. Pinning the current digest again changes nothing,
    except that a rollback to the current digest marks the pin as a rollback."""
    if kind not in PIN_KINDS:
        raise PinError(f"kind must be one of {', '.join(PIN_KINDS)}, got {kind!r}")
    if current and current["digest"] == ref.digest and current.get("repository") == ref.name:
        if kind == "rollback" and current.get("kind") != "rollback":
            if not reason or not reason.strip():
                raise PinError("reason is required to mark the pin as a rollback")
            return PinPlan({**current, "kind": "rollback", "reason": reason.strip()}, history, True)
        return PinPlan(current, history, False)
    if not reason or not reason.strip():
        raise PinError(f"reason is required to change the pin to {ref.by_digest}: say why (e.g. 'release 2026-11-24')")
    if current and current.get("repository") != ref.name and not forced:
        raise PinError(
            f"{ref.by_digest} is a different repository than the current pin ({current.get('repository')}): "
            "set force: true with a reason if the app really moved"
        )
    pin = {
        "image": ref.by_digest,
        "repository": ref.name,
        "digest": ref.digest,
        "tag": ref.tag,
        "pinned_at": now,
        "reason": reason.strip(),
    }
    if kind != "release":
        pin["kind"] = kind
    if evidence:
        pin["evidence"] = evidence
    if forced:
        pin["forced"] = True
    new_history = list(history)
    if current:
        entry = {key: current.get(key) for key in ("image", "digest", "tag", "pinned_at")}
        if current.get("kind"):
            entry["kind"] = current["kind"]
        entry["unpinned_at"] = now
        entry["reason"] = current.get("reason")
        if current.get("forced"):
            entry["forced"] = True
        if current.get("evidence"):
            entry["evidence_passed"] = bool(current["evidence"].get("passed"))
        new_history.insert(0, entry)
    return PinPlan(pin, new_history[: max(0, history_limit)], True)


# ------------------------------------------------------------------ markdown record


def render_markdown(pin: Optional[dict], history: list) -> str:
    """DOCKER_IMAGE_PIN.md: the current pin, then the history, newest first. Deterministic."""
    lines = [
        "# Docker image pin",
        "",
        "Generated by `pinned.release.pin_digest` from the pin file: do not edit by hand.",
        "",
    ]
    if not pin:
        lines += ["No image is pinned yet.", ""]
    else:
        evidence = pin.get("evidence") or {}
        if evidence:
            test = f"passed: {evidence.get('checks')} checks on {', '.join(evidence.get('hosts') or []) or '-'}"
            if evidence.get("finished_at"):
                test += f", finished {evidence['finished_at']}"
        else:
            test = "none"
        if pin.get("forced"):
            test += " (FORCED: evidence gate overridden)"
        lines += [
            "## Current pin",
            "",
            "| | |",
            "|---|---|",
            f"| Image | `{pin['image']}` |",
            f"| Digest | `{pin['digest']}` |",
            f"| Tag | {markdown_cell(pin.get('tag'))} |",
            f"| Pinned at | {markdown_cell(pin.get('pinned_at'))} |",
            f"| Reason | {markdown_cell(pin.get('reason'))} |",
            f"| Test evidence | {markdown_cell(test)} |",
            "",
        ]
    lines += ["## History", "", "Newest first. Roll back to an entry with `playbooks/rollback.yml`.", ""]
    if history:
        lines += ["| Digest | Tag | Pinned at | Unpinned at | Reason | Notes |", "|---|---|---|---|---|---|"]
        for entry in history:
            notes = "forced" if entry.get("forced") else ""
            lines.append(
                f"| `{short_digest(entry['digest'])}` | {markdown_cell(entry.get('tag'))} "
                f"| {markdown_cell(entry.get('pinned_at'))} | {markdown_cell(entry.get('unpinned_at'))} "
                f"| {markdown_cell(entry.get('reason'))} | {notes} |"
            )
    else:
        lines.append("No earlier pins.")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ legacy text rewrites


@dataclass
class TargetRewrite:
    path: str
    text: str
    replacements: list = field(default_factory=list)
    unpinned_refs: list = field(default_factory=list)
    pinned: int = 0

    def as_dict(self) -> dict:
        return {"path": self.path, "replacements": self.replacements, "unpinned_refs": self.unpinned_refs}


def _name_variants(ref: ImageReference) -> list:
    names = [ref.name]
    if ref.registry == DOCKER_HUB:
        names.append(ref.repository)
        if ref.repository.startswith("library/"):
            names.append(ref.repository[len("library/") :])
    return names


def rewrite_references(text: str, path: str, ref: ImageReference) -> TargetRewrite:
    """Point every ``<repository>[:tag]@sha256:<hex>`` in ``text`` at ``ref.digest``.

    Other repositories are left alone (a longer name such as ``app-extra`` is a
    different repository). ``<repository>:<tag>`` without a digest is reported
    as an unpinned reference with its line number; a bare name (no tag, no
    digest) is neither, as it is usually a variable holding the repository.
    """
    names = "|".join(re.escape(n) for n in sorted(_name_variants(ref), key=len, reverse=True))
    pattern = re.compile(
        rf"(?<![\w./-])(?P<name>{names})(?P<tag>:[\w][\w.-]{{0,127}})?"
        rf"(?:@(?P<digest>sha256:[0-9a-f]{{64}})|(?![\w./@:-]))"
    )
    result = TargetRewrite(path=path, text=text)
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), 1):

        def replace(match: re.Match, number: int = number) -> str:
            if match.group("digest") is None:
                if match.group("tag"):
                    result.unpinned_refs.append({"line": number, "reference": match.group(0)})
                return match.group(0)
            result.pinned += 1
            new = f"{match.group('name')}{match.group('tag') or ''}@{ref.digest}"
            if match.group("digest") != ref.digest:
                result.replacements.append({"line": number, "old": match.group("digest"), "new": ref.digest})
            return new

        out.append(pattern.sub(replace, line))
    result.text = "".join(out)
    return result


def check_target(rewrite: TargetRewrite, ref: ImageReference, on_unpinned: str) -> Optional[str]:
    """An error for a target the pin would not reach, or a warning text for unpinned references."""
    unpinned = ", ".join(f"line {u['line']}: {u['reference']}" for u in rewrite.unpinned_refs)
    if rewrite.pinned == 0 and rewrite.unpinned_refs:
        raise PinError(
            f"target {rewrite.path} references {ref.name} only by tag ({unpinned}): pin it there once by hand "
            f"({ref.name}@sha256:...) so every code path runs the pinned digest"
        )
    if rewrite.pinned == 0:
        raise PinError(
            f"target {rewrite.path} has no {ref.name}@sha256: reference: the pin would silently not apply there; "
            "remove it from targets or add the reference"
        )
    if rewrite.unpinned_refs and on_unpinned != "ignore":
        message = f"target {rewrite.path} also runs {ref.name} by a mutable tag ({unpinned}): pin it to a digest"
        if on_unpinned == "fail":
            raise PinError(message + ", or set on_unpinned: warn")
        return message
    return None
