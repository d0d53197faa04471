#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pin_digest
short_description: Pin a tested image digest for production, with history, an evidence gate and legacy file rewrites
version_added: 0.1.0
description:
  - Maintains the pin file, a group_vars file holding C(release_pin) (the digest production runs) and
    C(release_pin_history) (earlier pins, newest first). Ansible loads it as ordinary variables.
  - Refuses to pin a digest without a passing test record for that exact digest, unless forced with a reason.
  - Optionally renders a Markdown record (the generated C(DOCKER_IMAGE_PIN.md)) and rewrites every
    C(<repository>@sha256:...) reference in legacy scripts, compose files, Dockerfiles or C(.env) files.
  - All files of one call change together or not at all, atomically, under an exclusive lock next to the pin file.
  - "Run it on the controller (C(delegate_to: localhost), C(run_once: true))."
author:
  - pinned.release maintainers (@pinned-release)
extends_documentation_fragment:
  - pinned.release.registry
attributes:
  check_mode:
    support: full
    description: Computes everything and reports what would change; writes nothing.
  diff_mode:
    support: full
    description: Shows the exact text change of every file.
options:
  path:
    description:
      - The pin file. Created when missing, with a header saying it is managed.
    type: path
    required: true
  image:
    description:
      - "The digest reference to pin: C(repository@sha256:<hex>) or C(repository:tag@sha256:<hex>). A tag alone is refused."
      - Without it, the module only reads the pin (and keeps O(targets) and O(docs_path) in step with it).
    type: str
  reason:
    description:
      - Why the pin changes. Required whenever it does; recorded in the pin and, later, its history entry.
    type: str
  evidence:
    description:
      - Path to the JSON test record of the digest (written by the C(test_deploy) role).
      - A record that names the pin its test started from (C(from_digest)) must name the digest pinned now - it proves
        the upgrade production will take - or the pin is refused with what to do.
    type: path
  require_evidence:
    description:
      - Refuse to pin a digest unless O(evidence) says the checklist passed for that exact digest.
    type: bool
    default: true
  force:
    description:
      - Pin without passing evidence, or move the pin to another repository. Needs O(reason); recorded as C(forced).
    type: bool
    default: false
  verify_registry:
    description:
      - Check with a C(HEAD) request that the digest exists in its registry before pinning. This catches a local
        image ID passed in place of a repository digest.
    type: bool
    default: true
  trust_history:
    description:
      - When the registry cannot be reached, still pin a digest that is in the pin history (it was checked when it was
        pinned first). The result says so with RV(registry_verified=false). For emergency rollbacks.
    type: bool
    default: false
  kind:
    description:
      - What the new pin is - C(release) (a tested release) or C(rollback) (an emergency rollback). Recorded in the pin
        and its history, so the C(rollback) role can tell a rollback pin from a release without reading its reason.
    type: str
    choices: [release, rollback]
    default: release
  history_limit:
    description:
      - How many earlier pins to keep in C(release_pin_history).
    type: int
    default: 50
  docs_path:
    description:
      - Render the Markdown pin record here (current pin with its test summary, then the history table).
    type: path
  targets:
    description:
      - Text files whose C(<repository>@sha256:<hex>) and C(<repository>:<tag>@sha256:<hex>) references are rewritten
        to the pinned digest. Other repositories are left untouched.
      - A target without any digest reference to the repository is an error, as the pin would silently not apply there.
    type: list
    elements: path
    default: []
  on_unpinned:
    description:
      - What to do when a target also references the repository by a tag without a digest
        (the cause of silent version changes when a tenant is recreated).
    type: str
    choices: [fail, warn, ignore]
    default: fail
  backup:
    description:
      - Keep a timestamped copy (C(<file>.<timestamp>~)) of each file changed.
    type: bool
    default: false
seealso:
  - module: pinned.release.resolve_digest
notes:
  - The pin file is plain YAML that Ansible reads as group vars; do not edit it by hand.
"""

EXAMPLES = r"""
- name: Pin the tested candidate for production
  pinned.release.pin_digest:
    path: inventories/prod/group_vars/production/release_pin.yml
    image: "{{ candidate.image_ref }}"
    reason: "release 2026-11-24: chat export fix"
    evidence: ".release_state/evidence/{{ candidate.digest | replace(':', '-') }}.json"
    docs_path: DOCKER_IMAGE_PIN.md
    targets:
      - scripts/start-tenant.sh
      - scripts/manage-tenants.sh
  delegate_to: localhost
  run_once: true

- name: Read the pin only
  pinned.release.pin_digest:
    path: inventories/prod/group_vars/production/release_pin.yml
  delegate_to: localhost
  register: pin

- name: Emergency pin without evidence (recorded as forced)
  pinned.release.pin_digest:
    path: inventories/prod/group_vars/production/release_pin.yml
    image: ghcr.io/acme/open-webui@sha256:0d5c0c3e4f1b1a9a8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3921
    reason: "hotfix for CVE-2026-0001, tested by hand"
    force: true
  delegate_to: localhost
"""

RETURN = r"""
current:
  description: The pin after the call (the one production runs). Null when nothing is pinned.
  returned: always
  type: dict
  sample:
    image: ghcr.io/acme/open-webui@sha256:0d5c0c3e4f1b1a9a8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3921
    repository: ghcr.io/acme/open-webui
    digest: sha256:0d5c0c3e4f1b1a9a8f7e6d5c4b3a29181706f5e4d3c2b1a09f8e7d6c5b4a3921
    tag: release
    pinned_at: "2026-11-24T17:00:00Z"
    reason: release 2026-11-24
    evidence: {passed: true, checks: 12, hosts: [test1]}
previous:
  description: The newest history entry (the pin before the current one), the default rollback target.
  returned: always
  type: dict
history:
  description: Earlier pins, newest first, each with C(image), C(digest), C(tag), C(pinned_at), C(unpinned_at), C(reason).
  returned: always
  type: list
  elements: dict
targets:
  description: Per target file, what was (or would be) rewritten.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
      returned: always
    replacements:
      description: Each digest replaced, with its line number, old and new digest.
      type: list
      elements: dict
      returned: always
    unpinned_refs:
      description: References to the repository by a tag without digest, with their line numbers.
      type: list
      elements: dict
      returned: always
backup_files:
  description: Backups made when O(backup=true).
  returned: always
  type: list
  elements: str
registry_verified:
  description:
    - Whether the registry confirmed the digest. False when O(trust_history) pinned a history digest without it; null
      when nothing was asked of the registry.
  returned: always
  type: bool
registry_error:
  description:
    - Why the registry did not confirm the digest when O(trust_history) pinned it from the history (the registry
      unreachable, or refusing the credentials, in one line without secrets); null otherwise.
  returned: always
  type: str
"""

import contextlib
import os
import time
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._files import (
    FileChangeError,
    exclusive_lock,
    read_text,
    write_together,
)
from ansible_collections.pinned.release.plugins.module_utils._module import PinnedModule
from ansible_collections.pinned.release.plugins.module_utils._pins import (
    PinError,
    check_evidence,
    check_target,
    load_pin_file,
    plan_pin,
    render_markdown,
    render_pin_file,
    rewrite_references,
)
from ansible_collections.pinned.release.plugins.module_utils._reference import (
    ImageReferenceError,
    parse_pinned_reference,
)
from ansible_collections.pinned.release.plugins.module_utils._registry import (
    REGISTRY_ARGUMENT_SPEC,
    ManifestNotFound,
    RegistryError,
    client_from_params,
)


def _evidence_summary(params: dict, digest: str, pinned_now: Optional[str]):
    if params["evidence"]:
        text = read_text(params["evidence"], "evidence")
        if text is None:
            raise PinError(f"evidence {params['evidence']} does not exist: run deploy.yml -l test for {digest} first")
        try:
            return check_evidence(text, params["evidence"], digest, pinned_now)
        except PinError:
            if not params["force"]:
                raise
            return None
    if params["require_evidence"] and not params["force"]:
        raise PinError(
            f"no evidence for {digest}: pass the test record (evidence), or force: true with a reason to pin untested"
        )
    return None


def _verify_in_registry(params: dict, ref, history: list) -> Optional[str]:
    """None when the registry has the digest; why the registry could not say, when the history vouches for it."""
    try:
        with client_from_params(params) as client:
            client.resolve(ref)
    except ManifestNotFound as exc:
        raise PinError(f"cannot pin {ref.by_digest}: {exc}") from exc
    except RegistryError as exc:
        if params["trust_history"] and any(entry.get("digest") == ref.digest for entry in history):
            # Unreachable, or refusing these credentials: the incident says which, not a guess.
            return str(exc) or type(exc).__name__
        raise
    return None


def run_module(params: dict, check_mode: bool, now: str) -> dict:
    path = params["path"]
    lock_path = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.lock")
    # Check mode leaves no trace, not even a lock file.
    with contextlib.nullcontext() if check_mode else exclusive_lock(lock_path):
        old_text = read_text(path, "pin file")
        pin, history = load_pin_file(old_text, path)
        registry_verified, registry_error = None, None

        if params["image"]:
            ref = parse_pinned_reference(params["image"])
            if params["force"] and not (params["reason"] or "").strip():
                raise PinError("force: true needs a reason: it is recorded in the pin history")
            # Cheap checks first (reason, repository), then evidence, then the registry.
            plan = plan_pin(pin, history, ref, reason=params["reason"], now=now, forced=params["force"],
                            kind=params["kind"], history_limit=params["history_limit"])  # fmt: skip
            if plan.changed:
                evidence = _evidence_summary(params, ref.digest, pin["digest"] if pin else None)
                if evidence:
                    plan.pin["evidence"] = evidence
                if params["verify_registry"]:
                    registry_error = _verify_in_registry(params, ref, history)
                    registry_verified = registry_error is None
            pin, history, pin_changed = plan.pin, plan.history, plan.changed
        else:
            pin_changed = False

        changes = {}
        if pin_changed:
            changes[path] = render_pin_file(pin, history)

        warnings, target_results = [], []
        if params["targets"]:
            if not pin:
                raise PinError(f"targets given but {path} holds no pin yet: pin an image first")
            pinned_ref = parse_pinned_reference(pin["image"])
            for target in params["targets"]:
                text = read_text(target, "target")
                if text is None:
                    raise PinError(f"target {target} does not exist: fix the path or drop it from targets")
                rewrite = rewrite_references(text, target, pinned_ref)
                warning = check_target(rewrite, pinned_ref, params["on_unpinned"])
                if warning:
                    warnings.append(warning)
                target_results.append(rewrite.as_dict())
                if rewrite.text != text:
                    changes[target] = rewrite.text

        if params["docs_path"]:
            markdown = render_markdown(pin, history)
            if read_text(params["docs_path"], "docs file") != markdown:
                changes[params["docs_path"]] = markdown

        diff = [
            {"before_header": p, "after_header": p, "before": read_text(p) or "", "after": text}
            for p, text in changes.items()
        ]
        backups = []
        if changes and not check_mode:
            stamp = now.replace(":", "").replace("-", "")
            backups = write_together(changes, backup_stamp=stamp if params["backup"] else None)

    return {
        "changed": bool(changes),
        "current": pin,
        "previous": history[0] if history else None,
        "history": history,
        "targets": target_results,
        "backup_files": backups,
        "registry_verified": registry_verified,
        "registry_error": registry_error,
        "diff": diff,
        "_warnings": warnings,
    }


def main() -> None:
    module = PinnedModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "image": {"type": "str"},
            "reason": {"type": "str"},
            "evidence": {"type": "path"},
            "require_evidence": {"type": "bool", "default": True},
            "force": {"type": "bool", "default": False},
            "verify_registry": {"type": "bool", "default": True},
            "trust_history": {"type": "bool", "default": False},
            "kind": {"type": "str", "choices": ["release", "rollback"], "default": "release"},
            "history_limit": {"type": "int", "default": 50},
            "docs_path": {"type": "path"},
            "targets": {"type": "list", "elements": "path", "default": []},
            "on_unpinned": {"type": "str", "choices": ["fail", "warn", "ignore"], "default": "fail"},
            "backup": {"type": "bool", "default": False},
            **REGISTRY_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        result = run_module(module.params, module.check_mode, now)
    except (PinError, ImageReferenceError, RegistryError, FileChangeError) as exc:
        module.fail_json(msg=str(exc))
    for warning in result.pop("_warnings"):
        module.warn(warning)
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
