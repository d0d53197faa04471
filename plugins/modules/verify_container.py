#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: verify_container
short_description: Check that containers run the expected digest, are healthy, and are configured as declared
version_added: 0.1.0
description:
  - Compares each declared container with what the engine reports. The digest is the repository digest of the
    image the container actually runs (from the image's C(RepoDigests)), so a container started by a tag that has
    since moved, or from a re-tagged image, is still recognised for what it is.
  - With O(selector), also checks every container carrying those labels and reports the ones not declared as
    RV(unexpected).
  - With O(wait_timeout), waits for the declared containers to become healthy, and fails fast (without waiting out
    the timeout) when one is unhealthy, has exited, or restarts while waiting, returning its last log lines.
  - With O(tenants), checks a host's tenants as the release transaction declares them - given the O(image),
    O(tenants), O(app) and O(settings) the C(tenant) role passes to P(pinned.release.tenant_rollout#module), it
    reports per tenant exactly what that module's check mode reports as drift (the same look, the same comparison
    and readiness) - the container, its env files, and on the host the nginx sites, isolation, certificates and
    unfinished transactions; plus the managed containers no tenant declares (O(selector)). The C(tenant) role's
    C(tasks_from=verify) makes this call; the C(drift) role runs it on each host.
  - One engine listing per call; only the containers concerned are inspected. It never changes anything.
  - Runs on the managed host, against its engine.
author:
  - pinned.release maintainers (@pinned-release)
extends_documentation_fragment:
  - pinned.release.docker
  - pinned.release.tenants
attributes:
  check_mode:
    support: full
    description: Read-only; the result is identical in check mode.
  diff_mode:
    support: none
    description: It changes nothing, so there is no diff to show.
options:
  tenants:
    description:
      - The tenants of the host (C(release_tenants)), as P(pinned.release.tenant_rollout#module) takes them. Checked
        instead of O(containers); needs O(image) and O(app).
    required: false
  app:
    description:
      - The merged app profile, as P(pinned.release.tenant_rollout#module) takes it (with O(tenants)).
    type: dict
  settings:
    description:
      - With O(tenants) - the release transaction's settings as the C(tenant) role passes them, keyed as
        P(pinned.release.tenant_rollout#module)'s options (C(nginx.site_dir) for a sub-option of its C(nginx));
        absent ones take that module's defaults. The look reads C(isolation_allow), C(tls_min_days),
        C(restore_snapshots), the C(nginx.*) settings, C(state_dir) and C(audit_log).
    type: dict
    default: {}
  containers:
    description:
      - The containers to check and what is expected of each.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Container name.
        type: str
        required: true
      image:
        description: Expected C(repository@sha256:...) (defaults to O(image)).
        type: str
      env:
        description: Plain environment variables that must have these values; other variables are ignored.
        type: dict
      secret_env:
        description:
          - Secret environment variables that must have these values. They are compared, but never returned or logged
            (a C(no_log) option); a difference is reported as C(differs).
        type: dict
      labels:
        description: Labels that must have these values (a subset).
        type: dict
      mounts:
        description: C(source:destination) mounts that must exist.
        type: list
        elements: str
      published_ports:
        description:
          - The exact set of published ports, as docker writes them, for example C(127.0.0.1:8081:8080).
        type: list
        elements: str
      restart_policy:
        description: Expected restart policy name, for example C(unless-stopped).
        type: str
      health:
        description:
          - C(healthy) needs the container running and its healthcheck passing; C(running) only running;
            C(any) only that it exists.
        type: str
        choices: [healthy, running, any]
        default: healthy
      isolated:
        description:
          - Also drift - the container runs privileged, shares one of the host's network, PID, IPC or UTS
            namespaces, has added capabilities, publishes a port on an address other than loopback or those in
            O(containers[].published_ports), or has a mount beyond O(containers[].mounts) (anonymous volumes aside).
        type: bool
        default: false
  selector:
    description:
      - 'Labels (for example C({pinned.release.managed: "true"})) selecting containers to check against O(image).
        Selected containers not in O(containers) are reported as RV(unexpected) and count as drift.'
      - With O(tenants), selected containers that no tenant owns (by default those with the label
        C(pinned.release.managed)).
    type: dict
  image:
    description:
      - Expected C(repository@sha256:...) for containers found by O(selector), and for declared containers
        without their own O(containers[].image).
    type: str
  wait_timeout:
    description:
      - Seconds to wait for every declared container to meet its O(containers[].health). C(0) checks once. Not with
        O(tenants).
    type: int
    default: 0
  fail_on_drift:
    description:
      - Fail the task when anything differs. Set to C(false) to only report (for drift reports).
    type: bool
    default: true
  log_lines:
    description:
      - How many of a failing container's last log lines to return. Lines containing a secret value are dropped.
    type: int
    default: 20
notes:
  - A failed wait always fails the task, whatever O(fail_on_drift) says, because it is a health gate.
"""

EXAMPLES = r"""
- name: Health gate after replacing a tenant
  pinned.release.verify_container:
    containers:
      - name: openwebui-acme
        image: "{{ release_pin.image }}"
        env:
          WEBUI_URL: https://acme.example.com
        secret_env:
          WEBUI_SECRET_KEY: "{{ vault_acme_secret_key }}"
        published_ports: ["127.0.0.1:3001:8080"]
        restart_policy: unless-stopped
    wait_timeout: 120

- name: The tenants of this host as the release transaction declares them (what the tenant role's verify does)
  pinned.release.verify_container:
    image: "{{ release_pin.image }}"
    tenants: "{{ release_tenants }}"
    app: "{{ lookup('pinned.release.app_profile', release_app_profile | default('open-webui'), overrides=release_app | default({})).runtime }}"
    settings:
      nginx.site_dir: /etc/nginx/conf.d
    selector:
      pinned.release.managed: "true"
    fail_on_drift: false
  register: drift

- name: Drift check of a whole host, reporting only
  pinned.release.verify_container:
    selector:
      pinned.release.managed: "true"
    image: "{{ release_pin.image }}"
    containers: "{{ expected_containers }}"
    fail_on_drift: false
  register: drift
"""

RETURN = r"""
containers:
  description: One entry per declared container (with O(tenants), per tenant).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
      returned: always
    tenant:
      description: The tenant whose container it is.
      type: str
      returned: with O(tenants)
    action:
      description: What the release transaction would do - C(none), C(create), C(replace) or C(restore).
      type: str
      returned: with O(tenants)
    files_changed:
      description: The tenant's env files that differ from its declaration (names only).
      type: list
      elements: str
      returned: with O(tenants)
    exists:
      description: Whether the container exists.
      type: bool
      returned: always
    status:
      description: Engine status, for example C(running) or C(exited).
      type: str
      returned: always
    health:
      description: Healthcheck status - C(healthy), C(unhealthy), C(starting) or C(none).
      type: str
      returned: always
    restart_count:
      description: Restarts so far.
      type: int
      returned: always
    image:
      description: The image as configured on the container (a tag or a digest reference).
      type: str
      returned: always
    digest:
      description: Repository digest of the image the container runs.
      type: str
      returned: always
    expected_digest:
      description: The digest expected.
      type: str
      returned: always
    drift:
      description: What differs, as C(field), C(expected), C(actual). Secret values are masked.
      type: list
      elements: dict
      returned: always
    logs:
      description: Last log lines, when the container failed the wait (lines with secrets removed).
      type: list
      elements: str
      returned: when the wait failed for it
unexpected:
  description: Containers matched by O(selector) that are not declared - C(name), C(status), C(image), C(digest).
  returned: always
  type: list
  elements: dict
shared:
  description: Per tenant, what other containers do to it - mount its folder, publish its port.
  returned: with O(tenants)
  type: dict
certificates:
  description: Per tenant, why its certificate fails - it cannot be read, or expires within C(tls_min_days).
  returned: with O(tenants)
  type: dict
sites_to_change:
  description: nginx site files that differ from the declaration or are missing.
  returned: with O(tenants)
  type: list
  elements: str
sites_to_remove:
  description: nginx site files no tenant declares.
  returned: with O(tenants)
  type: list
  elements: str
pending_journal:
  description: Tenants an interrupted transaction left in its journal (the next deploy recovers them).
  returned: with O(tenants)
  type: list
  elements: str
remediable:
  description: Whether the release transaction would change something here (what its check mode calls changed).
  returned: with O(tenants)
  type: bool
status:
  description: Where each tenant stands, for the fleet page (as P(pinned.release.tenant_rollout#module) returns it).
  returned: with O(tenants)
  type: list
  elements: dict
drifted:
  description: Whether anything differs (including unexpected containers, and with O(tenants) the host's findings).
  returned: always
  type: bool
summary:
  description: Counts of C(checked), C(ok), C(drifted), C(missing), C(unexpected).
  returned: always
  type: dict
waited:
  description: Seconds spent waiting for health.
  returned: always
  type: float
"""

import time

from ansible_collections.pinned.release.plugins.module_utils._docker import (
    DOCKER_ARGUMENT_SPEC,
    EngineError,
    connect,
)
from ansible_collections.pinned.release.plugins.module_utils._drift import (
    DriftSpecError,
    compare,
    drift_message,
    drift_summary,
    parse_expectation,
    report_entry,
    secret_values,
)
from ansible_collections.pinned.release.plugins.module_utils._engine import DockerEngine, EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._journal import JournalError
from ansible_collections.pinned.release.plugins.module_utils._module import PinnedModule
from ansible_collections.pinned.release.plugins.module_utils._readiness import AppHealth, Probe, Readiness
from ansible_collections.pinned.release.plugins.module_utils._reference import (
    ImageReferenceError,
    parse_pinned_reference,
)
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.module_utils._tenants import TENANT_ARGUMENT_SPEC
from ansible_collections.pinned.release.plugins.module_utils._verify import check_tenants

POLL_SECONDS = 0.5
# Docker's own healthcheck decides (no app health path here); no healthcheck with health: healthy is a failure.
DOCKER_HEALTH = AppHealth(path=None, none_is_ready=False)


def _expectation_spec(spec: dict) -> dict:
    """The module's container entry (plain env, secret env) as _drift expects it (one env, secret keys)."""
    secret = spec.get("secret_env") or {}
    if not isinstance(secret, dict):
        raise DriftSpecError(f"containers entry {spec.get('name')}: secret_env must be a mapping of names to values")
    plain = spec.get("env") or {}
    overlap = sorted(set(plain) & set(secret)) if isinstance(plain, dict) else []
    if overlap:
        raise DriftSpecError(f"containers entry {spec.get('name')}: {', '.join(overlap)} in both env and secret_env")
    merged = {**plain, **secret} if isinstance(plain, dict) else plain
    return {**{k: v for k, v in spec.items() if v is not None}, "env": merged, "secret_env": sorted(secret)}


def run_module(params: dict, engine, mask, sleep=time.sleep) -> dict:
    default_image = params["image"]
    if params["tenants"] is not None:
        if params["containers"] or params["wait_timeout"]:
            raise DriftSpecError("tenants is checked as the transaction declares them: give it without containers "
                                 "and wait_timeout")  # fmt: skip
        return check_tenants(engine, params, mask, params["selector"])
    if not params["containers"] and not params["selector"]:
        raise DriftSpecError("nothing to check: give containers, or a selector with an image")
    if default_image:
        parse_pinned_reference(default_image)
    expectations = [
        parse_expectation(_expectation_spec(spec), i, default_image) for i, spec in enumerate(params["containers"])
    ]
    names = [e.name for e in expectations]
    if len(set(names)) != len(names):
        raise DriftSpecError(f"containers lists a name twice: {sorted({n for n in names if names.count(n) > 1})}")

    readiness = Readiness(engine, DOCKER_HEALTH, clock=time.monotonic, sleep=lambda _s: sleep(POLL_SECONDS))
    probes = {e.name: Probe(e.name, e.name, want=e.health) for e in expectations}
    start = time.monotonic()
    failures = readiness.wait(list(probes.values()), params["wait_timeout"]) if params["wait_timeout"] > 0 else {}
    waited = time.monotonic() - start if params["wait_timeout"] > 0 else 0.0
    facts = {e.name: engine.container(e.name, e.image) for e in expectations}
    # The values the containers actually have for secret keys are secrets too.
    mask.add(secret_values(expectations, facts))

    entries = []
    for expectation in expectations:
        found = facts[expectation.name]
        health = readiness.judge(found, probes[expectation.name]) if found is not None else None
        entry = report_entry(expectation, found, compare(expectation, found, health))
        if expectation.name in failures and found is not None:
            entry["logs"] = mask.lines(engine.logs(found["id"], params["log_lines"] * 3), params["log_lines"])
        entries.append(entry)

    unexpected = []
    if params["selector"]:
        wanted = {str(k): str(v) for k, v in params["selector"].items()}
        expected_ref = parse_pinned_reference(default_image) if default_image else None
        for container in engine.listing():
            if container["name"] in facts or any(container["labels"].get(k) != v for k, v in wanted.items()):
                continue
            found = engine.container(container["id"], expected_ref)
            if found:
                unexpected.append({k: found[k] for k in ("name", "status", "health", "image", "digest", "labels")})

    drifted_entries = [e for e in entries if e["drift"]]
    result = {
        "changed": False,
        "containers": entries,
        "unexpected": unexpected,
        "drifted": bool(drifted_entries or unexpected),
        "summary": drift_summary(entries, unexpected),
        "waited": round(waited, 2),
    }
    if failures:
        detail = "; ".join(f"{name}: {why}" for name, why in failures.items())
        result["msg"] = f"not healthy after {waited:.1f} s: {detail}"
        result["failed"] = True
    elif result["drifted"] and params["fail_on_drift"]:
        result["msg"] = drift_message(drifted_entries, unexpected)
        result["failed"] = True
    return result


def main() -> None:
    module = PinnedModule(
        argument_spec={
            "containers": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "image": {"type": "str"},
                    "env": {"type": "dict"},
                    "secret_env": {"type": "dict", "no_log": True},
                    "labels": {"type": "dict"},
                    "mounts": {"type": "list", "elements": "str"},
                    "published_ports": {"type": "list", "elements": "str"},
                    "restart_policy": {"type": "str"},
                    "health": {"type": "str", "choices": ["healthy", "running", "any"], "default": "healthy"},
                    "isolated": {"type": "bool", "default": False},
                },
            },
            "tenants": {"type": "list", "elements": "dict", "options": TENANT_ARGUMENT_SPEC},
            "app": {"type": "dict"},
            "settings": {"type": "dict", "default": {}},
            "selector": {"type": "dict"},
            "image": {"type": "str"},
            "wait_timeout": {"type": "int", "default": 0},
            "fail_on_drift": {"type": "bool", "default": True},
            "log_lines": {"type": "int", "default": 20},
            **DOCKER_ARGUMENT_SPEC,
        },
        required_by={"selector": "image", "tenants": ["image", "app"]},
        supports_check_mode=True,
    )
    params = module.params
    mask = SecretMask([v for c in params["containers"] for v in (c.get("secret_env") or {}).values()]
                      + [v for t in params["tenants"] or [] for v in (t.get("secrets") or {}).values()])  # fmt: skip
    result = module.result_of(
        lambda: run_module(params, DockerEngine(connect(params)), mask),
        mask,
        (EngineError, DriftSpecError, ImageReferenceError, EngineCallError, ValueError, JournalError, OSError),
    )
    module.exit_masked(result, mask)


if __name__ == "__main__":
    main()
