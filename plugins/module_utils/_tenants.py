# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tenants as the inventory declares them -> what runs on a host, and the checks that prove it works."""

from __future__ import annotations

import json
import re
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._reference import (
    ImageReferenceError,
    parse_pinned_reference,
)

TENANT_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MANAGED_LABEL = "pinned.release.managed"
TENANT_LABEL = "pinned.release.tenant"
DIGEST_LABEL = "pinned.release.digest"


def tenant_problems(tenants: object, app: dict, image: Optional[str] = None) -> list:
    """Every problem with the declared tenants, one line each; empty when they can be deployed."""
    problems = []
    if image is not None:
        try:
            parse_pinned_reference(image)
        except ImageReferenceError as exc:
            problems.append(f"image: {exc}")
    if not isinstance(tenants, list):
        return [*problems, f"release_tenants must be a list of tenants, got {type(tenants).__name__}"]
    seen: dict = {"name": {}, "port": {}, "domain": {}}
    for index, tenant in enumerate(tenants):
        where = f"release_tenants[{index}]"
        if not isinstance(tenant, dict):
            problems.append(f"{where} must be a mapping with name, domain, port")
            continue
        name = tenant.get("name")
        where = f"tenant {name!r}" if name else where
        if not isinstance(name, str) or not TENANT_NAME_RE.match(name):
            problems.append(f"{where}: name must be lowercase letters, digits and '-', e.g. 'acme'")
        domain = tenant.get("domain")
        if not isinstance(domain, str) or not DOMAIN_RE.match(domain):
            problems.append(f"{where}: domain {domain!r} is not a lowercase host name")
        port = tenant.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            problems.append(f"{where}: port {port!r} must be a number from 1 to 65535")
        for key, value in (("name", name), ("port", port), ("domain", domain)):
            if value is None:
                continue
            if value in seen[key]:
                problems.append(f"{where}: {key} {value!r} is already used by tenant {seen[key][value]!r}")
            seen[key][value] = name
        for field in ("env", "secrets"):
            values = tenant.get(field) or {}
            if not isinstance(values, dict):
                problems.append(f"{where}: {field} must be a mapping of VARIABLE: value")
                continue
            for key, value in values.items():
                if not isinstance(key, str) or not ENV_KEY_RE.match(key):
                    problems.append(f"{where}: {field} key {key!r} is not a valid environment variable name")
                elif "\n" in str(value if value is not None else ""):
                    problems.append(f"{where}: {field}.{key} contains a line break, which an env file cannot hold")
        secrets = tenant.get("secrets") or {}
        if isinstance(secrets, dict):
            for required in app.get("required_secrets") or []:
                if not secrets.get(required):
                    problems.append(
                        f"{where}: secret {required} is missing or empty: set it in the vault (never regenerated)"
                    )
            overlap = sorted(set(secrets) & set(tenant.get("env") or {}))
            if overlap:
                problems.append(
                    f"{where}: {', '.join(overlap)} set both in env and secrets: keep secrets in secrets only"
                )
    return problems


def _env_file(values: dict) -> str:
    # docker --env-file takes KEY=VALUE literally, one per line.
    return "".join(f"{key}={'' if value is None else value}\n" for key, value in sorted(values.items()))


def tenant_spec(tenant: dict, app: dict, image: str) -> dict:
    """Everything needed to run, check and describe one tenant's container on its host."""
    ref = parse_pinned_reference(image)
    name = tenant["name"]
    url = f"{app['scheme']}://{tenant['domain']}"
    env = {key: str(value) for key, value in (app.get("env") or {}).items()}
    env.update({key: url for key in app.get("url_env") or []})
    env.update({key: url + path for key, path in (app.get("url_path_env") or {}).items()})
    env.update({key: "" if value is None else str(value) for key, value in (tenant.get("env") or {}).items()})
    secrets = {key: "" if value is None else str(value) for key, value in (tenant.get("secrets") or {}).items()}
    base = f"{app['data_root']}/{name}"
    container = f"{app['container_prefix']}{name}"
    published = f"{app['bind_address']}:{tenant['port']}:{app['container_port']}"
    labels = {MANAGED_LABEL: "true", TENANT_LABEL: name, DIGEST_LABEL: ref.digest}
    memory = tenant.get("memory", app.get("memory"))
    argv = ["docker", "run", "--detach", "--name", container, "--restart", app["restart_policy"]]
    argv += ["--publish", published, "--volume", f"{base}/data:{app['data_path']}"]
    argv += ["--env-file", f"{base}/app.env", "--env-file", f"{base}/secrets.env"]
    if memory:
        argv += ["--memory", str(memory)]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    argv.append(ref.by_digest)
    return {
        "name": name,
        "container": container,
        "domain": tenant["domain"],
        "port": tenant["port"],
        "url": url,
        "dir": base,
        "data_dir": f"{base}/data",
        "snapshot_dir": f"{base}/snapshots",
        "env_file": f"{base}/app.env",
        "env_file_content": _env_file(env),
        "secrets_file": f"{base}/secrets.env",
        "secrets_file_content": _env_file(secrets),
        "tls_cert": tenant.get("tls_cert"),
        "tls_key": tenant.get("tls_key"),
        "run_argv": argv,
        "expectation": {
            "name": container,
            "image": ref.by_digest,
            "env": {**env, **secrets},
            "secret_env": sorted(secrets),
            "labels": labels,
            "mounts": [f"{base}/data:{app['data_path']}"],
            "published_ports": [published],
            "restart_policy": app["restart_policy"],
            "health": app.get("health", "healthy"),
        },
    }


def _checked_specs(tenants: list, app: dict, image: str) -> list:
    problems = tenant_problems(tenants, app, image)
    if problems:
        raise ValueError("; ".join(problems))
    return [tenant_spec(tenant, app, image) for tenant in tenants]


SECRET_KEYS = ("secrets_file_content", "expectation")


def tenant_specs(tenants: list, app: dict, image: str) -> list:
    """Specs without any secret value: safe to loop over and to show."""
    return [{k: v for k, v in spec.items() if k not in SECRET_KEYS} for spec in _checked_specs(tenants, app, image)]


def tenant_expectations(
    tenants: list, app: dict, image: str, health: Optional[str] = None, names: Optional[list] = None
) -> list:
    """verify_container expectations (with secret values, which that module masks)."""
    expectations = [spec["expectation"] for spec in _checked_specs(tenants, app, image)]
    if names is not None:
        expectations = [e for e in expectations if e["name"] in names]
    if health:
        expectations = [{**e, "health": health} for e in expectations]
    return expectations


def tenant_secret_files(tenants: list, app: dict, image: str) -> list:
    """``{path, content}`` of each tenant's secrets env file: only for no_log tasks."""
    return [
        {"path": s["secrets_file"], "content": s["secrets_file_content"]} for s in _checked_specs(tenants, app, image)
    ]


# ------------------------------------------------------------------ HTTP checks (smoke checks, release checklist)


def _json_subset_mismatch(expected: dict, actual: object) -> Optional[str]:
    if not isinstance(actual, dict):
        return "body is not a JSON object"
    for key, value in expected.items():
        if key not in actual:
            return f"JSON has no {key!r}"
        if actual[key] != value:
            return f"JSON {key!r} is {json.dumps(actual[key])}, expected {json.dumps(value)}"
    return None


def check_outcome(check: dict, response: dict) -> dict:
    """Judge one ``ansible.builtin.uri`` result against a check; ``{name, passed, detail}``."""
    name = check.get("name") or check.get("path", "?")
    status = response.get("status", -1)
    if status in (-1, None):
        return {"name": name, "passed": False, "detail": f"no answer: {response.get('msg', 'request failed')}"}
    if status != check.get("status", 200):
        return {"name": name, "passed": False, "detail": f"HTTP {status}, expected {check.get('status', 200)}"}
    content = response.get("content") or ""
    if check.get("content_type"):
        got = (response.get("content_type") or "").split(";", 1)[0].strip()
        if got != check["content_type"]:
            return {
                "name": name,
                "passed": False,
                "detail": f"content type {got or 'none'}, expected {check['content_type']}",
            }
    if check.get("json") is not None or check.get("json_keys"):
        try:
            body = json.loads(content)
        except ValueError:
            return {"name": name, "passed": False, "detail": "body is not JSON"}
        mismatch = _json_subset_mismatch(check.get("json") or {}, body)
        if mismatch is None:
            missing = [key for key in check.get("json_keys") or [] if not isinstance(body, dict) or key not in body]
            mismatch = f"JSON lacks {', '.join(missing)}" if missing else None
        if mismatch:
            return {"name": name, "passed": False, "detail": mismatch}
    if check.get("contains") and check["contains"] not in content:
        return {"name": name, "passed": False, "detail": f"body does not contain {check['contains']!r}"}
    return {"name": name, "passed": True, "detail": f"HTTP {status}"}


def check_outcomes(results: list) -> list:
    """Outcomes for a looped uri task whose items are ``{tenant, check}`` or ``[spec, check]``."""
    outcomes = []
    for result in results:
        item = result.get("item") or {}
        if isinstance(item, (list, tuple)):  # product(specs, checks)
            tenant, check = item[0].get("name"), item[1]
        else:
            tenant, check = item.get("tenant"), item.get("check") or {}
        if result.get("skipped"):
            continue
        outcome = check_outcome(check, result)
        outcome["tenant"] = tenant
        outcomes.append(outcome)
    return outcomes


def evidence_hosts(hosts: list, hostvars: object) -> dict:
    """Per test host: passed, deploy_error, and the checks of each tenant (for the evidence record).

    A host passes when it deployed and ran at least one check and every check passed.
    """
    record = {}
    for host in hosts:
        variables = hostvars[host]
        outcomes = list(variables.get("_test_deploy_outcomes") or [])
        failure = variables.get("_test_deploy_failure")
        tenants: dict = {}
        for outcome in outcomes:
            entry = tenants.setdefault(outcome.get("tenant"), {"passed": True, "checks": []})
            entry["checks"].append({k: outcome.get(k) for k in ("name", "passed", "detail")})
            entry["passed"] = entry["passed"] and bool(outcome.get("passed"))
        record[host] = {
            "passed": failure is None and bool(outcomes) and all(o.get("passed") for o in outcomes),
            "deploy_error": failure,
            "tenants": tenants,
        }
    return record
