# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compare what a container is (docker inspect data) with what the inventory declares.

Pure functions over inspect dictionaries, so they are tested on recorded JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._isolation import (
    container_problems,
    extra_mounts,
    port_address,
)
from ansible_collections.pinned.release.plugins.module_utils._reference import (
    ImageReference,
    ImageReferenceError,
    parse_pinned_reference,
    parse_reference,
)
from ansible_collections.pinned.release.plugins.module_utils._secrets import SECRET_MASK

HEALTH_CHOICES = ("healthy", "running", "any")
EXPECTATION_KEYS = {
    "name",
    "image",
    "env",
    "secret_env",
    "labels",
    "mounts",
    "published_ports",
    "restart_policy",
    "health",
    "memory",
    "env_exact",
    "isolated",
}


class DriftSpecError(ValueError):
    """An expectation the module cannot use; the message names the entry and the field."""


@dataclass
class Expectation:
    name: str
    image: Optional[ImageReference] = None
    env: dict = field(default_factory=dict)
    secret_env: list = field(default_factory=list)
    labels: dict = field(default_factory=dict)
    mounts: list = field(default_factory=list)
    published_ports: Optional[list] = None
    restart_policy: Optional[str] = None
    health: str = "healthy"
    memory: Optional[int] = None  # bytes; 0: no limit; None: not compared
    env_exact: bool = False  # also every variable beyond the image's own and the expected ones is drift
    isolated: bool = False  # also what breaks isolation (_isolation) is drift, and any mount beyond the expected


def _strings(value: object, where: str, kind: str) -> object:
    if kind == "dict":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise DriftSpecError(f"{where} must be a mapping of names to strings")
        return {k: "" if v is None else str(v) for k, v in value.items()}
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DriftSpecError(f"{where} must be a list of strings")
    return list(value)


def parse_expectation(spec: object, index: int, default_image: Optional[str] = None) -> Expectation:
    where = f"containers[{index}]"
    if not isinstance(spec, dict):
        raise DriftSpecError(f"{where} must be a mapping with at least a name, got {type(spec).__name__}")
    unknown = sorted(set(spec) - EXPECTATION_KEYS)
    if unknown:
        raise DriftSpecError(
            f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(EXPECTATION_KEYS))}"
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise DriftSpecError(f"{where}.name is required and must be a string")
    where = f"containers[{index}] ({name})"
    image_text = spec.get("image") or default_image
    image = None
    if image_text:
        try:
            image = parse_pinned_reference(str(image_text))
        except ImageReferenceError as exc:
            raise DriftSpecError(f"{where}.image: {exc}") from exc
    health = spec.get("health") or "healthy"
    if health not in HEALTH_CHOICES:
        raise DriftSpecError(f"{where}.health must be one of {', '.join(HEALTH_CHOICES)}, got {health!r}")
    expectation = Expectation(
        name=name,
        image=image,
        env=_strings(spec.get("env") or {}, f"{where}.env", "dict"),
        secret_env=_strings(spec.get("secret_env") or [], f"{where}.secret_env", "list"),
        labels=_strings(spec.get("labels") or {}, f"{where}.labels", "dict"),
        mounts=_strings(spec.get("mounts") or [], f"{where}.mounts", "list"),
        published_ports=_strings(spec["published_ports"], f"{where}.published_ports", "list")
        if spec.get("published_ports") is not None
        else None,
        restart_policy=spec.get("restart_policy"),
        health=health,
        memory=_memory(spec.get("memory"), where),
        env_exact=bool(spec.get("env_exact")),
        isolated=bool(spec.get("isolated")),
    )
    missing = [key for key in expectation.secret_env if key not in expectation.env]
    if missing:
        raise DriftSpecError(f"{where}.secret_env names {', '.join(missing)} without an expected value in env")
    return expectation


def _memory(value: object, where: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DriftSpecError(f"{where}.memory must be a number of bytes (0: no limit), got {value!r}")
    return value


# ------------------------------------------------------------------ facts from inspect data


def _env_dict(entries: Optional[list]) -> dict:
    env = {}
    for entry in entries or []:
        key, _sep, value = entry.partition("=")
        env[key] = value
    return env


def published_ports(port_bindings: Optional[dict]) -> list:
    """``HostConfig.PortBindings`` as ``ip:host:container[/udp]`` strings, sorted."""
    ports = []
    for container_port, bindings in (port_bindings or {}).items():
        number, _sep, proto = container_port.partition("/")
        suffix = "" if proto in ("", "tcp") else f"/{proto}"
        for binding in bindings or []:
            host_ip = binding.get("HostIp") or "0.0.0.0"  # noqa: S104 - describing docker's default, not binding
            ports.append(f"{host_ip}:{binding.get('HostPort') or ''}:{number}{suffix}")
    return sorted(ports)


def normalise_port(text: str) -> str:
    """``8081:8080`` -> ``0.0.0.0:8081:8080``; ``/tcp`` dropped, as docker writes them."""
    body, _sep, proto = text.partition("/")
    parts = body.rsplit(":", 2)
    if len(parts) == 2:
        parts.insert(0, "0.0.0.0")  # noqa: S104
    suffix = "" if proto in ("", "tcp") else f"/{proto}"
    return ":".join(parts) + suffix


def repo_digests(image_inspect: Optional[dict]) -> dict:
    """``{canonical repository: [digests]}`` from an image's RepoDigests."""
    result: dict = {}
    for entry in (image_inspect or {}).get("RepoDigests") or []:
        try:
            ref = parse_reference(entry, default_tag=None)
        except ImageReferenceError:
            continue
        if ref.digest:
            result.setdefault(ref.name, []).append(ref.digest)
    return result


def container_facts(inspect: dict, image_inspect: Optional[dict], expected: Optional[ImageReference] = None) -> dict:
    """What matters of a container, including the repository digest it actually runs."""
    state = inspect.get("State") or {}
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    health = (state.get("Health") or {}).get("Status") or ("none" if config.get("Healthcheck") is None else "starting")
    if config.get("Healthcheck") and (config["Healthcheck"].get("Test") or [""])[0] == "NONE":
        health = "none"
    digests = repo_digests(image_inspect)
    configured = config.get("Image") or ""
    digest, digest_source = None, "RepoDigests"
    if expected is not None:
        candidates = digests.get(expected.name, [])
        digest = expected.digest if expected.digest in candidates else (candidates[0] if candidates else None)
    elif len(digests) == 1:
        digest = next(iter(digests.values()))[0]
    if digest is None:
        # The image is gone locally, or lost its RepoDigests (docker rmi -f while in use):
        # only a container started by digest still tells what it runs.
        why = "image no longer present locally" if image_inspect is None else "image has no RepoDigests for it"
        try:
            ref = parse_reference(configured, default_tag=None)
            if expected is None or ref.name == expected.name:
                digest = ref.digest
        except ImageReferenceError:
            pass
        digest_source = f"container config ({why})" if digest else f"unknown ({why})"
    return {
        "name": (inspect.get("Name") or "").lstrip("/"),
        "id": inspect.get("Id"),
        "exists": True,
        "status": state.get("Status"),
        "health": health,
        "restart_count": inspect.get("RestartCount", 0),
        "exit_code": state.get("ExitCode"),
        "image": configured,
        "image_id": inspect.get("Image"),
        "digest": digest,
        "digest_source": digest_source,
        "env": _env_dict(config.get("Env")),
        "image_env": _env_dict(((image_inspect or {}).get("Config") or {}).get("Env")),
        # the image's own labels (its version among them): a label given to the container at create time is not them
        "image_labels": dict(((image_inspect or {}).get("Config") or {}).get("Labels") or {}),
        "labels": config.get("Labels") or {},
        "mounts": sorted(f"{m.get('Source')}:{m.get('Destination')}" for m in inspect.get("Mounts") or []),
        "published_ports": published_ports(host.get("PortBindings")),
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name") or "no",
        "memory": host.get("Memory") or 0,
        "started_at": state.get("StartedAt"),
        "finished_at": state.get("FinishedAt"),
        "privileged": bool(host.get("Privileged")),
        "network_mode": host.get("NetworkMode") or "",
        "pid_mode": host.get("PidMode") or "",
        "ipc_mode": host.get("IpcMode") or "",
        "uts_mode": host.get("UTSMode") or "",
        "cap_add": sorted(host.get("CapAdd") or []),
        "devices": sorted(d.get("PathOnHost") or "?" for d in host.get("Devices") or []),
        "security_opt": sorted(host.get("SecurityOpt") or []),
        "mount_details": [
            {
                "type": m.get("Type"),
                "source": m.get("Source"),
                "destination": m.get("Destination"),
                "name": m.get("Name"),
            }
            for m in inspect.get("Mounts") or []
        ],
    }


# ------------------------------------------------------------------ comparison


def compare(expectation: Expectation, facts: Optional[dict], health: Optional[tuple] = None) -> list:
    """Drift entries ``{field, expected, actual}``; secret values are never in them.

    ``health`` is the readiness verdict ``(verdict, why)`` the caller judged (``_readiness``); None leaves health out.
    """
    if facts is None:
        return [{"field": "exists", "expected": True, "actual": False}]
    drift = []
    if expectation.image is not None and facts["digest"] != expectation.image.digest:
        actual = facts["digest"] or f"unknown ({facts['digest_source']})"
        drift.append({"field": "digest", "expected": expectation.image.digest, "actual": actual})
    if health is not None and health[0] != "ok":
        expected = "running" if expectation.health == "running" else "running and healthy"
        drift.append(
            {"field": "health", "expected": expected, "actual": f"{facts['status']}/{facts['health']}: {health[1]}"}
        )
    drift += _env_drift(expectation, facts)
    for key, value in sorted(expectation.labels.items()):
        if facts["labels"].get(key) != value:
            drift.append({"field": f"labels.{key}", "expected": value, "actual": facts["labels"].get(key)})
    for mount in expectation.mounts:
        if mount not in facts["mounts"]:
            drift.append({"field": "mounts", "expected": mount, "actual": facts["mounts"]})
    if expectation.published_ports is not None:
        wanted = sorted(normalise_port(p) for p in expectation.published_ports)
        if wanted != facts["published_ports"]:
            drift.append({"field": "published_ports", "expected": wanted, "actual": facts["published_ports"]})
    if expectation.restart_policy and facts["restart_policy"] != expectation.restart_policy:
        drift.append(
            {"field": "restart_policy", "expected": expectation.restart_policy, "actual": facts["restart_policy"]}
        )
    if expectation.memory is not None and (facts.get("memory") or 0) != expectation.memory:
        drift.append({"field": "memory", "expected": expectation.memory, "actual": facts.get("memory") or 0})
    if expectation.isolated:
        drift += isolation_drift(expectation, facts)
    return drift


def isolation_drift(expectation: Expectation, facts: dict) -> list:
    """What breaks the container's isolation, as drift entries (field ``isolation``)."""
    declared = {port_address(normalise_port(p)) for p in expectation.published_ports or []}
    drift = [{"field": "isolation", "expected": "isolated from the host and the other tenants", "actual": problem}
             for problem in container_problems(facts, declared)]  # fmt: skip
    drift += [{"field": "isolation", "expected": f"only its own mounts ({', '.join(expectation.mounts) or 'none'})",
               "actual": f"also mounts {mount}"} for mount in extra_mounts(facts, expectation.mounts)]  # fmt: skip
    return drift


def _env_drift(expectation: Expectation, facts: dict) -> list:
    """Expected variables that differ; with ``env_exact``, also variables set beyond the image's and the expected ones
    (a variable or secret removed from the declaration), whose values are never shown: they may be secrets."""
    drift = []
    for key, value in sorted(expectation.env.items()):
        actual = facts["env"].get(key)
        if actual == value:
            continue
        if key in expectation.secret_env:
            drift.append(
                {
                    "field": f"env.{key}",
                    "expected": SECRET_MASK,
                    "actual": "differs" if actual is not None else "missing",
                }
            )
        else:
            drift.append({"field": f"env.{key}", "expected": value, "actual": actual})
    if expectation.env_exact:
        image_env = facts.get("image_env") or {}
        for key in sorted(set(facts["env"]) - set(expectation.env)):
            if key not in image_env:
                drift.append({"field": f"env.{key}", "expected": "(not set)", "actual": "set (not declared)"})
            elif facts["env"][key] != image_env[key]:
                drift.append({"field": f"env.{key}", "expected": "(the image's own value)", "actual": "another value"})
    return drift


def report_entry(expectation: Expectation, facts: Optional[dict], drift: list) -> dict:
    entry = {
        "name": expectation.name,
        "exists": facts is not None,
        "status": facts["status"] if facts else None,
        "health": facts["health"] if facts else None,
        "restart_count": facts["restart_count"] if facts else None,
        "image": facts["image"] if facts else None,
        "digest": facts["digest"] if facts else None,
        "expected_digest": expectation.image.digest if expectation.image else None,
        "drift": drift,
    }
    return entry


def secret_values(expectations: list, facts_by_name: dict) -> set:
    """Every expected and actual value of a secret key: none may be returned or logged."""
    values = set()
    for expectation in expectations:
        facts = facts_by_name.get(expectation.name)
        for key in expectation.secret_env:
            values.add(expectation.env.get(key))
            if facts:
                values.add(facts["env"].get(key))
    return {v for v in values if v}


def drift_summary(entries: list, unexpected: list) -> dict:
    """Counts of a check: its report entries (report_entry; a tenant's changed env files are drift too) and the
    unexpected containers."""
    drifted = sum(1 for e in entries if e["drift"] or e.get("files_changed"))
    return {
        "checked": len(entries) + len(unexpected),
        "ok": len(entries) - drifted,
        "drifted": drifted,
        "missing": sum(1 for e in entries if not e["exists"]),
        "unexpected": len(unexpected),
    }


def drift_message(entries: list, unexpected: list) -> str:
    """One line naming each container, field, expected and actual value."""
    parts = []
    for entry in entries:
        for item in entry["drift"]:
            parts.append(f"{entry['name']}: {item['field']} expected {item['expected']!s}, actual {item['actual']!s}")
    for extra in unexpected:
        parts.append(f"{extra['name']}: unexpected managed container (digest {extra['digest']}, {extra['status']})")
    return "drift: " + "; ".join(parts)
