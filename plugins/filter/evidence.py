# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for test evidence: evidence_path, evidence_record, evidence_gate, evidence_candidate (documented in their .yml
files)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.pinned.release.plugins.module_utils._reference import ImageReferenceError
from ansible_collections.pinned.release.plugins.plugin_utils._evidence import (
    evidence_gate,
    evidence_path,
    evidence_record,
    read_candidate,
)
from ansible_collections.pinned.release.plugins.plugin_utils._filter_args import expect


def _path(digest, evidence_dir):
    expect("evidence_path", "the digest", digest, "a string")
    expect("evidence_path", "the evidence folder", evidence_dir, "a string")
    try:
        return evidence_path(evidence_dir, digest)
    except ImageReferenceError as exc:
        raise AnsibleFilterError(f"evidence_path: {exc}") from exc


def _record(outcomes, resolved, candidate, operator, now, previous=None, from_digest=None):
    if not isinstance(outcomes, dict) or not isinstance(resolved, dict) or "digest" not in resolved:
        raise AnsibleFilterError(
            "evidence_record: expects {host: outcome} and the resolve_digest result of the candidate"
        )
    if from_digest not in (None, "") and not isinstance(from_digest, str):
        raise AnsibleFilterError(f"evidence_record: from_digest must be a digest or empty, got {from_digest!r}")
    return evidence_record(outcomes, resolved, candidate, operator, now, previous if isinstance(previous, dict) else None,
                           from_digest or None)  # fmt: skip


def _gate(digest, evidence_dir):
    expect("evidence_gate", "the digest", digest, "a string")
    expect("evidence_gate", "the evidence folder", evidence_dir, "a string")
    return evidence_gate(evidence_dir, digest) or ""


def _candidate(path, require_signature=False):
    expect("evidence_candidate", "the candidate file", path, "a string")
    expect("evidence_candidate", "require_signature", require_signature, "a boolean")
    return read_candidate(path, require_signature)


class FilterModule:
    def filters(self):
        return {"evidence_path": _path, "evidence_record": _record, "evidence_gate": _gate,
                "evidence_candidate": _candidate}  # fmt: skip
