#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: run_checklist
short_description: Run a testing checklist over HTTP against every tenant of a host, through its nginx
version_added: 0.2.0
description:
  - Runs the named checks of a checklist, in order, against each tenant, from the host itself through its nginx
    (the tenant's C(Host) header, and SNI for HTTPS sites) or directly on the tenant's published port.
  - A check can keep values from an answer (a login token, an id) for later checks as C(${name}). With O(keep),
    the values are kept in a private file on the host (C(<state_dir>/checklist/<keep>/<tenant>.json), mode 0600)
    so a later call with O(use_kept) goes on from them - a token issued before an upgrade, tried after it. They
    never leave the host.
  - Secret values (O(variables), kept values) are never returned; a failed check says what differed, not the body.
author:
  - pinned.release maintainers (@pinned-release)
attributes:
  check_mode:
    support: none
    description:
      - The checks send requests that may write (sign-ups, saved functions) and may restart a container, so Ansible
        skips it in check mode.
  diff_mode:
    support: none
    description:
      - It changes no file but its kept values. What the checks do to a test tenant (sign-ups, saved functions, a
        restart) is the test itself, not a change to the host's configuration, so C(changed) stays false and a test
        deploy run twice reports no change.
options:
  tenants:
    description:
      - The tenants to check (C(release_tenants) as it is); C(name), C(domain), C(port), C(tls_cert), and C(env) and
        C(secrets) for an C(oidc) check's client id, are used.
      - "An empty list fails: a checklist run on nothing proves nothing."
  checks:
    description:
      - "The checklist, in order. Each check - C(name), C(path), C(method), C(headers), C(json_body) or C(body),
        C(status) (a code or a list), C(json) (a subset of the JSON answer), C(json_keys), C(contains),
        C(content_type), C(sse) (C(min_events), C(min_spread_ms) - streamed events spread over time), C(save)
        (C({variable: dotted.path}) of the answer), C(enabled), C(timeout). C(${name}) takes a variable."
      - "Three checks act on the tenant's container (from O(containers)). C(isolation: true) sends no request and
        judges the container as the drift check does - not privileged, no namespace of the host or of another
        container, no added capability, host device or unconfined security profile, ports published on loopback or
        the declared address only, no mount beyond the declared ones - and that no other container mounts the
        tenant's folder (or a folder holding it, or one inside it, symlinks resolved) or publishes its port.
        C(restart: true) (or C({wait: seconds}), default 180) restarts the container (giving the app its declared
        stop timeout) and tries the request until it passes or the wait is over (persistence across a restart); a
        restart that fails starts the container again and says where it stands."
      - "C(memory: {max: 90%, max_growth_percent: 10, passes: 1}) sends no request of its own - it reads the
        container's memory (as C(docker stats) counts it), sends the read-only (GET) checks that passed above
        C(passes) more times, reads it again, and passes when neither reading is over C(max) (bytes such as C(700m),
        or a share of the container's memory limit, or of the host's memory when it has none) and it grew by at most
        C(max_growth_percent) (a rise under 4 MiB never counts). It records both
        readings in its outcome (C(memory_bytes), C(memory_after_bytes), C(memory_limit_bytes))."
      - "C(certificate: true) (or C({min_days: N}), default 14) sends no request of its own: it makes a TLS handshake
        with nginx's HTTPS port for the tenant's domain and passes when the certificate served is valid for that
        domain, chains to O(tls_ca) (else the host's trusted CAs) and stays valid for C(min_days) more days. Its
        outcome records C(certificate_not_after). A tenant without C(tls_cert) skips it."
      - "C(oidc: {subject: user@example.invalid}) signs in through the tenant's identity provider (OpenID Connect)
        before the check's own request: the app's login (C(login_path), default C(/oauth/oidc/login)) must redirect
        with the tenant's own client id (the tenant's C(client_id_from) variable in its C(env) or C(secrets), default
        C(OAUTH_CLIENT_ID)) and a redirect URI on the tenant's domain (C(redirect_path), default
        C(/oauth/oidc/callback)). With C(subject), a test provider that signs a subject in from a form (C(sub), as
        oidc-provider-mock does) completes the authorization-code flow through nginx, and the check's own request
        (C(path)) is sent with the session the app gave. Without C(subject) only the redirect is judged, which needs no
        reachable provider (Google). A tenant without a client id skips it."
      - It fails when no check is enabled.
    type: list
    elements: dict
    required: true
  variables:
    description: Values the checks can use as C(${name}) (credentials...); never returned or logged.
    type: dict
    default: {}
  per_tenant_variables:
    description: "C({tenant: {name: value}}): values for one tenant only (its expected version...)."
    type: dict
    default: {}
  keep:
    description: Keep every variable at the end (including the saved ones) under this name on the host.
    type: str
  use_kept:
    description: Start from the variables kept earlier under this name (an absent file starts empty).
    type: str
  skip_if_down:
    description:
      - When the first check of a tenant gets no answer, or 502, 503 or 504 (nothing runs there yet, or it is down),
        report every check of that tenant as skipped instead of failed. For the checks run before a deploy, whose
        values later checks carry over it.
    type: bool
    default: false
  via:
    description: C(nginx) sends through the host's nginx; C(direct) to the tenant's published port on 127.0.0.1.
    type: str
    choices: [nginx, direct]
    default: nginx
  http_port:
    description: nginx's HTTP port.
    type: int
    default: 80
  https_port:
    description: nginx's HTTPS port (tenants with C(tls_cert)).
    type: int
    default: 443
  state_dir:
    description: Where kept values go.
    type: path
    default: /var/lib/pinned-release
  containers:
    description:
      - The tenants' containers as P(pinned.release.tenant_rollout#module) returns them in RV(pinned.release.tenant_rollout#module:tenants)
        (C(name), C(container), C(declared)), for the C(isolation), C(restart) and C(memory) checks. The engine is
        reached only when an enabled check needs it.
    type: list
    elements: dict
    default: []
  isolation_allow:
    description:
      - Names of containers allowed to mount the tenants' folders or publish their ports (a monitoring agent, a backup
        tool); the C(isolation) check does not report them. The role passes C(tenant_isolation_allow).
    type: list
    elements: str
    default: []
  tls_ca:
    description:
      - A file on the host with the CA certificate(s) that the C(certificate) check trusts; without it, the host's own
        trusted CAs (a public CA such as Let's Encrypt).
    type: path
extends_documentation_fragment:
  - pinned.release.docker
  - pinned.release.tenants
"""

EXAMPLES = r"""
- name: Checklist through nginx
  pinned.release.run_checklist:
    tenants: "{{ release_tenants }}"
    checks:
      - name: health
        path: /health
        json: {status: true}
      - name: admin signs in
        method: POST
        path: /api/v1/auths/signin
        json_body: {email: "${admin_email}", password: "${admin_password}"}
        save: {token: token}
    variables:
      admin_email: "{{ vault_test_admin_email }}"
      admin_password: "{{ vault_test_admin_password }}"
  register: checklist
"""

RETURN = r"""
tenants:
  description: Per tenant, whether every check passed, and each check's outcome.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Tenant name.
      type: str
      returned: always
    passed:
      description: Every enabled check passed (and at least one ran).
      type: bool
      returned: always
    checks:
      description: C(name), C(passed), C(detail), C(elapsed_ms) of each check run; C(skipped) for one that was not.
      type: list
      elements: dict
      returned: always
passed:
  description: Every tenant passed.
  returned: always
  type: bool
"""

import functools
import os
import re
import secrets

from ansible_collections.pinned.release.plugins.module_utils._checklist_container import (
    ContainerChecks,
    container_entry_problems,
)
from ansible_collections.pinned.release.plugins.module_utils._checks import (
    check_problems,
    restart_wait,
    run_checks,
    secret_strings,
    tenant_address,
)
from ansible_collections.pinned.release.plugins.module_utils._docker import (
    DOCKER_ARGUMENT_SPEC,
    EngineError,
    connect,
)
from ansible_collections.pinned.release.plugins.module_utils._engine import DockerEngine, EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._http import peer_certificate
from ansible_collections.pinned.release.plugins.module_utils._journal import JournalError, read_json, write_json
from ansible_collections.pinned.release.plugins.module_utils._module import PinnedModule
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask, finish
from ansible_collections.pinned.release.plugins.module_utils._tenants import TENANT_ARGUMENT_SPEC

KEEP_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def kept_path(state_dir: str, name: str, tenant: str) -> str:
    if not KEEP_NAME_RE.fullmatch(name) or not KEEP_NAME_RE.fullmatch(tenant):
        raise ValueError(f"keep/use_kept name {name!r} must be letters, digits, '.', '_' or '-'")
    return os.path.join(state_dir, "checklist", name, f"{tenant}.json")


def _down(outcome: dict) -> bool:
    detail = outcome.get("detail", "")
    return not outcome["passed"] and (
        detail.startswith("no answer") or detail.split(",")[0] in ("HTTP 502", "HTTP 503", "HTTP 504")
    )


def needs_engine(checks: list) -> bool:
    def acts_on_the_container(check: dict) -> bool:
        return bool(
            check.get("isolation") or check.get("memory") is not None or restart_wait(check.get("restart", False))
        )

    return any(c.get("enabled", True) is not False and acts_on_the_container(c) for c in checks)


def validate(params: dict) -> None:
    """Every problem with the checks and the containers, before anything is sent or the engine is reached."""
    if not params["tenants"]:
        raise ValueError("tenants is empty: give the tenants to check (the host's release_tenants)")
    problems = check_problems(params["checks"], "checks", container_checks=True)
    problems += container_entry_problems(params["containers"])
    if problems:
        raise ValueError("; ".join(problems))
    if not any(c.get("enabled", True) is not False for c in params["checks"]):
        raise ValueError("checks has no enabled check: a checklist that checks nothing proves nothing")


def run_module(params: dict, mask: SecretMask, send=None, connect_engine=None, sleep=None,
               fetch_certificate=peer_certificate) -> dict:  # fmt: skip
    """``connect_engine()``: the engine, reached only once the checks are valid and one of them needs it."""
    validate(params)
    engine = connect_engine() if connect_engine is not None and needs_engine(params["checks"]) else None
    containers = {entry["name"]: entry for entry in params["containers"] if entry.get("declared")}
    kwargs = {"send": send} if send else {}
    if sleep:
        kwargs["sleep"] = sleep
    nginx_ports = None if params["via"] == "direct" else (params["http_port"], params["https_port"])
    results = []
    given = set(params["variables"] or {}) | {"run_token"}
    run_token = secrets.token_urlsafe(18)  # ${run_token}: a password for what a check creates and removes again
    mask.add([run_token])
    for tenant in params["tenants"]:
        values = {"run_token": run_token, **(params["variables"] or {})}
        values.update((params["per_tenant_variables"] or {}).get(tenant["name"]) or {})
        if params["use_kept"]:
            values.update(
                read_json(kept_path(params["state_dir"], params["use_kept"], tenant["name"]), "kept values") or {}
            )
        mask.add(secret_strings(list(values.values())))
        base, server_name = tenant_address(tenant["port"], tenant["domain"], bool(tenant.get("tls_cert")), nginx_ports)
        checks = [c for c in params["checks"] if c.get("enabled", True) is not False]
        if engine is not None and tenant["name"] in containers:
            kwargs["container"] = ContainerChecks(engine, tenant["name"], containers[tenant["name"]],
                                                  params["isolation_allow"])  # fmt: skip
        else:
            kwargs.pop("container", None)
        kwargs["replays"] = []  # one list for the tenant's two calls: a memory check sends its first check again too
        kwargs["tenant_values"] = {
            str(k): str(v) for part in ("env", "secrets") for k, v in (tenant.get(part) or {}).items()
        }
        if not tenant.get("tls_cert"):
            kwargs["tls_probe"] = None
        elif nginx_ports is None:  # the certificate is nginx's: a run that goes to the tenant's port has none to judge
            kwargs["tls_probe"] = lambda: (
                None,
                "the certificate is served by nginx, and via=direct does not go through it",
            )
        else:
            kwargs["tls_probe"] = functools.partial(fetch_certificate, "127.0.0.1", params["https_port"],
                                                    tenant["domain"], params["tls_ca"])  # fmt: skip
        outcomes, values = run_checks(checks[:1], base, host_header=tenant["domain"], server_name=server_name,
                                      variables=values, **kwargs)  # fmt: skip
        if params["skip_if_down"] and outcomes and _down(outcomes[0]):
            why = f"skipped: {tenant['name']} was not answering ({outcomes[0]['detail']}), so there is nothing to carry over"
            outcomes = [{"name": c["name"], "passed": True, "skipped": True, "detail": why} for c in checks]
            values = {}
        else:
            more, values = run_checks(checks[1:], base, host_header=tenant["domain"], server_name=server_name,
                                      variables=values, **kwargs)  # fmt: skip
            outcomes += more
        mask.add(secret_strings(list(values.values())))
        if params["keep"]:
            kept = {
                k: v for k, v in values.items() if isinstance(v, (str, int, float, bool, list, dict)) and k not in given
            }
            write_json(kept_path(params["state_dir"], params["keep"], tenant["name"]), kept)
        results.append({"name": tenant["name"], "passed": bool(outcomes) and all(o["passed"] for o in outcomes),
                        "checks": outcomes})  # fmt: skip
    return {"changed": False, "tenants": results, "passed": all(r["passed"] for r in results)}


def main() -> None:
    module = PinnedModule(
        argument_spec={
            "tenants": {"type": "list", "elements": "dict", "required": True, "options": TENANT_ARGUMENT_SPEC},
            "checks": {"type": "list", "elements": "dict", "required": True},
            "variables": {"type": "dict", "default": {}, "no_log": True},
            "per_tenant_variables": {"type": "dict", "default": {}},
            "keep": {"type": "str", "no_log": False},
            "use_kept": {"type": "str"},
            "skip_if_down": {"type": "bool", "default": False},
            "via": {"type": "str", "choices": ["nginx", "direct"], "default": "nginx"},
            "http_port": {"type": "int", "default": 80},
            "https_port": {"type": "int", "default": 443},
            "state_dir": {"type": "path", "default": "/var/lib/pinned-release"},
            "containers": {"type": "list", "elements": "dict", "default": []},
            "isolation_allow": {"type": "list", "elements": "str", "default": []},
            "tls_ca": {"type": "path"},
            **DOCKER_ARGUMENT_SPEC,
        },
        supports_check_mode=False,
    )
    secrets = [v for t in module.params["tenants"] if isinstance(t, dict) for v in (t.get("secrets") or {}).values()]
    mask = SecretMask([*secrets, *(module.params["variables"] or {}).values()])
    if module.check_mode:
        module.exit_json(
            **finish(
                module, {"changed": False, "skipped": True, "msg": "checks send requests: not run in check mode"}, mask
            )
        )
    result = module.result_of(
        lambda: run_module(module.params, mask, connect_engine=lambda: DockerEngine(connect(module.params))),
        mask,
        (ValueError, JournalError, OSError, EngineError, EngineCallError),
    )
    module.exit_json(**finish(module, result, mask))


if __name__ == "__main__":
    main()
