# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tenants as the inventory declares them -> what runs on a host: container, files, site, checks.

Used on the controller (preflight, descriptions) and on the host (the release transaction), so the
rules that decide what a tenant's container is live here once.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._checks import check_problems
from ansible_collections.pinned.release.plugins.module_utils._format import MEMORY_RE, memory_bytes
from ansible_collections.pinned.release.plugins.module_utils._nginx import (
    COMMON_NAME,
    access_log_dir_problem,
    proxy_problem,
    tls_problem,
)
from ansible_collections.pinned.release.plugins.module_utils._reference import (
    ImageReferenceError,
    parse_pinned_reference,
)
from ansible_collections.pinned.release.plugins.module_utils._settings import display_name, limit_problems

# Adoption cuts a container name to a tenant name this long.
TENANT_NAME_MAX = 42
TENANT_NAME_RE = re.compile(rf"^[a-z0-9]([a-z0-9-]{{0,{TENANT_NAME_MAX - 2}}}[a-z0-9])?$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONTAINER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# Names the transaction itself uses for files beside the tenants' own.
RESERVED_TENANT_NAMES = {
    COMMON_NAME: f"its nginx site would be the file every tenant shares (pinned-release-{COMMON_NAME}.conf)"
}
MANAGED_LABEL = "pinned.release.managed"
TENANT_LABEL = "pinned.release.tenant"
DIGEST_LABEL = "pinned.release.digest"
TENANT_KEYS = {"name", "domain", "port", "env", "secrets", "memory", "tls_cert", "tls_key", "image", "adopt_from"}
APP_REQUIRED = ("container_prefix", "container_port", "data_path", "data_root", "bind_address", "restart_policy",
                "scheme")  # fmt: skip
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
# A tenant as modules take it (release_tenants as it is): its secrets are a no_log option.
TENANT_ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "domain": {"type": "str", "required": True},
    "port": {"type": "int", "required": True},
    "env": {"type": "dict"},
    "secrets": {"type": "dict", "no_log": True},
    "memory": {"type": "str"},
    "tls_cert": {"type": "path"},
    "tls_key": {"type": "path", "no_log": False},
    "image": {"type": "str"},
    "adopt_from": {
        "type": "dict",
        "options": {"container": {"type": "str", "required": True}, "data": {"type": "path", "required": True}},
    },
}


def app_problems(app: object) -> list:
    """One line per problem with the merged app profile (release_app over the defaults)."""
    if not isinstance(app, dict):
        return [f"release_app must be a mapping, got {type(app).__name__}"]
    problems = [f"release_app.{key} is missing" for key in APP_REQUIRED if app.get(key) in (None, "")]
    if problems:
        return problems
    # The prefix starts every container name: it must be one by itself.
    if not CONTAINER_NAME_RE.fullmatch(str(app["container_prefix"])):
        problems.append(f"release_app.container_prefix {app['container_prefix']!r} is not usable in a container name")
    if not isinstance(app["container_port"], int) or isinstance(app["container_port"], bool):
        problems.append(f"release_app.container_port must be a number, got {app['container_port']!r}")
    for key in ("data_path", "data_root"):
        if not str(app[key]).startswith("/"):
            problems.append(f"release_app.{key} must be an absolute path, got {app[key]!r}")
    try:
        ipaddress.ip_address(str(app["bind_address"]))
    except ValueError:
        problems.append(f"release_app.bind_address must be an IP address (127.0.0.1 keeps the tenants behind nginx), "
                        f"got {app['bind_address']!r}")  # fmt: skip
    if app["restart_policy"] not in RESTART_POLICIES:
        problems.append(f"release_app.restart_policy must be one of {', '.join(RESTART_POLICIES)}")
    for key in ("env", "url_path_env"):
        if app.get(key) is not None and not isinstance(app[key], dict):
            problems.append(f"release_app.{key} must be a mapping")
    for key in ("url_env", "required_secrets", "snapshot_exclude"):
        if app.get(key) is not None and not isinstance(app[key], list):
            problems.append(f"release_app.{key} must be a list")
    if app.get("health_json") is not None and not isinstance(app["health_json"], dict):
        problems.append("release_app.health_json must be a mapping (a subset of the health answer)")
    for exclude in app.get("snapshot_exclude") or []:
        if not isinstance(exclude, str) or exclude.startswith("/") or ".." in exclude.split("/"):
            problems.append(f"release_app.snapshot_exclude entry {exclude!r} must be a path inside the data folder")
    proxy = proxy_problem(app)
    if proxy:
        problems.append(proxy)
    return problems


def _image_problem(image: object, where: str) -> Optional[str]:
    try:
        parse_pinned_reference(image)  # type: ignore[arg-type]
    except ImageReferenceError as exc:
        return f"{where}: {exc}"
    return None


def tenant_problems(tenants: object, app: dict, image: Optional[str] = None) -> list:
    """Every problem with the declared tenants, one line each; empty when they can be deployed."""
    problems = app_problems(app)
    if problems:
        return problems
    if image is not None:
        problem = _image_problem(image, "image")
        if problem:
            problems.append(problem)
    if not isinstance(tenants, list):
        return [*problems, f"release_tenants must be a list of tenants, got {type(tenants).__name__}"]
    seen: dict = {"name": {}, "port": {}, "domain": {}}
    for index, tenant in enumerate(tenants):
        where = f"release_tenants[{index}]"
        if not isinstance(tenant, dict):
            problems.append(f"{where} must be a mapping with name, domain, port")
            continue
        name = tenant.get("name")
        where = f"tenant {name!r}" if isinstance(name, str) and name else where
        unknown = sorted(str(k) for k in set(tenant) - TENANT_KEYS)
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(TENANT_KEYS))}")
        if not isinstance(name, str) or not TENANT_NAME_RE.fullmatch(name):
            problems.append(f"{where}: name must be lowercase letters, digits and '-', e.g. 'acme', got {name!r}")
        elif name in RESERVED_TENANT_NAMES:
            problems.append(f"{where}: the name {name!r} is reserved ({RESERVED_TENANT_NAMES[name]}): choose another")
        domain = tenant.get("domain")
        if not isinstance(domain, str) or not DOMAIN_RE.fullmatch(domain):
            problems.append(f"{where}: domain {domain!r} is not a lowercase host name")
        port = tenant.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            problems.append(f"{where}: port {port!r} must be a number from 1 to 65535")
        for key, value in (("name", name), ("port", port), ("domain", domain)):
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                continue
            if value in seen[key]:
                problems.append(f"{where}: {key} {value!r} is already used by tenant {seen[key][value]!r}")
            seen[key][value] = name
        if tenant.get("image") is not None:
            problem = _image_problem(tenant["image"], f"{where}: image")
            if problem:
                problems.append(problem)
        adopt = tenant.get("adopt_from")
        if adopt is not None and (
            not isinstance(adopt, dict)
            or not CONTAINER_NAME_RE.fullmatch(str(adopt.get("container") or ""))
            or not str(adopt.get("data") or "").startswith("/")
        ):
            problems.append(f"{where}: adopt_from needs container (the hand-started container's name) and data (the "
                            f"absolute path of its data on the host), got {adopt!r}")  # fmt: skip
        memory = tenant.get("memory")
        if memory is not None and not MEMORY_RE.fullmatch(str(memory)):
            problems.append(f"{where}: memory {memory!r} must be a size such as 700m or 2g")
        tls = tls_problem(tenant.get("tls_cert"), tenant.get("tls_key"))
        if tls:
            problems.append(f"{where}: {tls}")
        for field in ("env", "secrets"):
            values = tenant.get(field) or {}
            if not isinstance(values, dict):
                problems.append(f"{where}: {field} must be a mapping of VARIABLE: value, got {type(values).__name__}")
                continue
            for key, value in values.items():
                if not isinstance(key, str) or not ENV_KEY_RE.fullmatch(key):
                    problems.append(f"{where}: {field} key {key!r} is not a valid environment variable name")
                elif isinstance(value, (dict, list)):
                    problems.append(f"{where}: {field}.{key} must be a single value, got a {type(value).__name__}")
                elif "\n" in str(value if value is not None else ""):
                    problems.append(f"{where}: {field}.{key} contains a line break, which an env file cannot hold")
        secrets = tenant.get("secrets") or {}
        if isinstance(secrets, dict):
            for required in app.get("required_secrets") or []:
                if not secrets.get(required):
                    problems.append(
                        f"{where}: secret {required} is missing or empty: set it in the vault (without it the app "
                        "makes a new one at every recreate, and every user is logged out)"
                    )
            overlap = sorted(set(secrets) & set(tenant.get("env") or {}) if isinstance(tenant.get("env"), dict) else [])
            if overlap:
                problems.append(
                    f"{where}: {', '.join(overlap)} set both in env and secrets: keep secrets in secrets only"
                )
    return problems


def _env_file(values: dict) -> str:
    # docker --env-file takes KEY=VALUE literally, one per line.
    return "".join(f"{key}={value}\n" for key, value in sorted(values.items()))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tenant_spec(tenant: dict, app: dict, image: str) -> dict:
    """Everything needed to run, check and describe one tenant's container (secret values under ``secret_env``)."""
    ref = parse_pinned_reference(tenant.get("image") or image)
    name = tenant["name"]
    # nginx serves a tenant with a certificate over HTTPS, whatever the app's scheme (http: TLS ends elsewhere, or none)
    url = f"{'https' if tenant.get('tls_cert') else app['scheme']}://{tenant['domain']}"
    env = {key: _text(value) for key, value in (app.get("env") or {}).items()}
    env.update({key: url for key in app.get("url_env") or []})
    env.update({key: url + path for key, path in (app.get("url_path_env") or {}).items()})
    env.update({key: _text(value) for key, value in (tenant.get("env") or {}).items()})
    secrets = {key: _text(value) for key, value in (tenant.get("secrets") or {}).items()}
    base = f"{app['data_root'].rstrip('/')}/{name}"
    container = f"{app['container_prefix']}{name}"
    # The argument spec hands over memory: None for a tenant that sets none: the app's limit, not "no limit" ("0").
    memory = tenant["memory"] if tenant.get("memory") is not None else app.get("memory")
    return {
        "name": name,
        "container": container,
        "domain": tenant["domain"],
        "port": tenant["port"],
        "url": url,
        "image": ref.by_digest,
        "digest": ref.digest,
        "dir": base,
        "data_dir": f"{base}/data",
        "snapshot_dir": f"{base}/snapshots",
        "env_file": f"{base}/app.env",
        "secrets_file": f"{base}/secrets.env",
        "env": env,
        "secret_env": secrets,
        "labels": {MANAGED_LABEL: "true", TENANT_LABEL: name, DIGEST_LABEL: ref.digest},
        "bind_address": app["bind_address"],
        "container_port": app["container_port"],
        "published": f"{app['bind_address']}:{tenant['port']}:{app['container_port']}",
        "mount": f"{base}/data:{app['data_path']}",
        "restart_policy": app["restart_policy"],
        "memory": _text(memory) or None,
        "stop_timeout": int(app.get("stop_timeout", 30)),
        "tls_cert": tenant.get("tls_cert"),
        "tls_key": tenant.get("tls_key"),
        "adopt_from": dict(tenant["adopt_from"]) if tenant.get("adopt_from") else None,
    }


def env_file_content(spec: dict) -> str:
    return _env_file(spec["env"])


def secrets_file_content(spec: dict) -> str:
    return _env_file(spec["secret_env"])


def expectation(spec: dict, health: str = "running") -> dict:
    """What verify_container (and the transaction's plan) expects of the tenant's container."""
    return {
        "name": spec["container"],
        "image": spec["image"],
        "env": {**spec["env"], **spec["secret_env"]},
        "secret_env": sorted(spec["secret_env"]),
        "labels": spec["labels"],
        "mounts": [spec["mount"]],
        "published_ports": [spec["published"]],
        "restart_policy": spec["restart_policy"],
        "health": health,
        "memory": memory_bytes(spec.get("memory")),
        # A variable or secret removed from the declaration is drift too: it must leave the container.
        "env_exact": True,
        # Privileges, host namespaces, a port past loopback or a mount beyond its data folder is drift too.
        "isolated": True,
    }


def checked_specs(tenants: list, app: dict, image: str) -> list:
    problems = tenant_problems(tenants, app, image)
    if problems:
        raise ValueError("; ".join(problems))
    return [tenant_spec(tenant, app, image) for tenant in tenants]


RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


def settings_problems(settings: dict, as_role: bool = True) -> list:
    """One line per problem with the transaction's settings (keyed by the module's option names), each named as the
    caller knows it: the tenant role's variable (``as_role``), or the module's option."""
    problems = limit_problems(settings, as_role)
    lock = settings.get("break_lock")
    if lock not in (None, "") and (
        not isinstance(lock, str) or not RUN_ID_RE.fullmatch(lock) or lock.lower() in ("true", "yes", "false", "no")
    ):
        problems.append(f"{display_name('break_lock', as_role)} takes the run id the lock refusal names, or 'stale', "
                        f"got {lock!r} (docs/recovery.md)")  # fmt: skip
    if settings.get("smoke_checks") is not None:
        problems += check_problems(settings["smoke_checks"], display_name("smoke_checks", as_role))
    log_dir = access_log_dir_problem(settings.get("nginx.access_log_dir"))
    if log_dir:
        problems.append(log_dir.replace("nginx.access_log_dir", display_name("nginx.access_log_dir", as_role), 1))
    return problems
