# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adoption on the controller: tenant declarations, the secrets to vault and the report, from adopt_facts results."""

from __future__ import annotations

import re

from ansible_collections.pinned.release.plugins.module_utils._tenants import ENV_KEY_RE, TENANT_NAME_MAX

SECRETS_VARIABLE = "vault_adopted_secrets"
TEMPLATE_MARKERS = ("{{", "{%", "{#")


class Unsafe(str):
    """A value Ansible must never template (written as ``!unsafe``): what a container ran with is data, not Jinja.

    Written live, ``X={{ lookup('pipe', ...) }}`` would run on the controller at the next deploy, and an Open WebUI
    prompt template (``{{CONTEXT}}``) would fail it as an undefined variable."""


def literal(value: object) -> object:
    """``value``, marked never to be templated when it holds a template marker (in a mapping or list: each value)."""
    if isinstance(value, dict):
        return {key: literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [literal(item) for item in value]
    return Unsafe(value) if isinstance(value, str) and any(m in value for m in TEMPLATE_MARKERS) else value


def env_name_problems(entry: dict) -> list:
    """Env names the container was started with that no declaration may carry (Docker takes any name): a tenant's
    env key must be a plain variable name, and a secret's name is part of its vault reference."""
    odd = sorted(name for name in [*entry.get("env", {}), *entry.get("secrets", {})] if not ENV_KEY_RE.fullmatch(name))
    return [f"its env has names that are not plain variable names ({', '.join(repr(n) for n in odd)}): rename them "
            "when you start it, or leave it out of the adoption"] if odd else []  # fmt: skip


def tenant_name(container: str, prefix: str) -> str:
    """The tenant's name: the container's without the app's container prefix, made a valid tenant name."""
    name = container[len(prefix) :] if prefix and container.startswith(prefix) and container != prefix else container
    name = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:TENANT_NAME_MAX].strip("-")
    return name or "tenant"


def declaration(entry: dict, prefix: str) -> tuple:
    """``(tenant, secrets)``: the tenant declaration (secrets as vault references) and its secret values."""
    name = tenant_name(entry["container"], prefix)
    tenant = {"name": name, "domain": entry["domains"][0] if entry["domains"] else "",
              "port": entry["ports"][0]["host_port"] if entry["ports"] else 0}  # fmt: skip
    if entry["env"]:
        tenant["env"] = {key: literal(value) for key, value in sorted(entry["env"].items())}
    if entry["secrets"]:
        tenant["secrets"] = {
            key: f"{{{{ {SECRETS_VARIABLE}['{name}']['{key}'] }}}}" for key in sorted(entry["secrets"])
        }
    if entry.get("memory"):
        tenant["memory"] = entry["memory"]
    if entry.get("tls"):  # the hand-written site's certificate: the managed site serves HTTPS with it
        tenant["tls_cert"], tenant["tls_key"] = entry["tls"]["cert"], entry["tls"]["key"]
    if entry.get("digest_ref"):
        tenant["image"] = entry["digest_ref"]
    data = entry.get("data") or {}
    if data.get("source"):
        source = data["source"].rstrip("/") + ("/" + data["subpath"] if data.get("subpath") else "")
        tenant["adopt_from"] = {"container": entry["container"], "data": source}
    # Everything found on the host is data: only the vault references written here are templates.
    references = tenant.pop("secrets", None)
    tenant = literal(tenant)
    if references:
        tenant["secrets"] = references
    return tenant, literal(dict(entry["secrets"]))


# How adopt_facts and name_conflicts name the containers of a conflict ("a and b [and c] both ..."): container names
# have no spaces.
CONFLICT_RE = re.compile(r"^((?:\S+ and )+\S+) both ")


def held_back_entry(entry: dict, conflicts: list) -> bool:
    """A container with a problem, or in a conflict with others, is not adopted."""
    in_conflict = (match[1].split(" and ") for match in map(CONFLICT_RE.match, conflicts) if match)
    return (
        bool(entry["problems"]) or bool(env_name_problems(entry)) or any(entry["container"] in c for c in in_conflict)
    )


def name_conflicts(entries: list, prefix: str) -> list:
    """Containers whose names become the same tenant name (``Acme`` and ``acme``): one would overwrite the other's
    secrets and data folder."""
    by_name: dict = {}
    for entry in entries:
        by_name.setdefault(tenant_name(entry["container"], prefix), []).append(entry["container"])
    return [f"{' and '.join(containers)} both become tenant {name}: rename one of them (docker rename) or adopt one at a "
            "time (-e adopt_containers=...)" for name, containers in sorted(by_name.items()) if len(containers) > 1]  # fmt: skip


def host_plan(host: str, result: dict, prefix: str) -> dict:
    """Per host: the declarations of the containers that can be adopted, their secrets, and the report."""
    tenants, secrets, held_back = [], {}, []
    entries = result.get("containers") or []
    conflicts = list(result.get("conflicts") or []) + name_conflicts(entries, prefix)
    result = {**result, "conflicts": conflicts}
    for entry in entries:
        if held_back_entry(entry, conflicts):
            held_back.append(entry)
            continue
        tenant, values = declaration(entry, prefix)
        tenants.append(tenant)
        if values:
            secrets[tenant["name"]] = values
    return {"host": host, "tenants": tenants, "secrets": secrets, "held_back": held_back,
            "report": report(host, result, prefix)}  # fmt: skip


def after_first_deploy(host: str, entry: dict, name: str) -> list:
    """What the operator does once the tenant runs managed: each step is theirs, none is automatic."""
    steps = []
    if entry.get("sites"):
        steps.append(f"delete the hand-written nginx site {', '.join(entry['sites'])} and reload nginx: the managed "
                     "site serves the domain now (until then nginx warns about a conflicting server_name)")  # fmt: skip
    if entry.get("digest_ref"):
        steps.append(f"it stays on the digest it ran: delete the `image` of tenant `{name}` in "
                     f"host_vars/{host}/release_tenants.yml to put it on the release pin (the next deploy moves it there, "
                     "snapshot first)")  # fmt: skip
    data = entry.get("data") or {}
    if data:
        steps.append(f"its old data ({data.get('kind')} {data.get('name') or data.get('source')}) is kept, never "
                     "deleted: remove it yourself once you no longer need it")  # fmt: skip
    return steps


def report(host: str, result: dict, prefix: str) -> str:
    """The adoption report of a host, in Markdown; no secret value in it."""
    lines = [f"# Adoption of {host}", ""]
    entries = result.get("containers") or []
    if not entries:
        lines.append("No unmanaged container of the app was found.")
    for entry in entries:
        name = tenant_name(entry["container"], prefix)
        data = entry.get("data") or {}
        where = f"{data.get('kind')} {data.get('name') or data.get('source')}" if data else "NOT ON A MOUNT"
        lines += [
            f"## {entry['container']} -> tenant `{name}`",
            "",
            f"- image: `{entry['image']}`; digest: `{entry.get('digest_ref') or 'none'}`",
            f"- domains: {', '.join(entry['domains']) or 'none found'}; ports: "
            + (", ".join(f"{p['host_ip']}:{p['host_port']}" for p in entry["ports"]) or "none"),
            f"- data: {where}; restart: {entry['restart_policy']}; memory: {entry.get('memory') or 'no limit'}",
            f"- env: {', '.join(sorted(entry['env'])) or 'none'}; secrets (vaulted): {', '.join(sorted(entry['secrets'])) or 'none'}"
            + (" (the session key read from the file the app generated in the container)" if entry.get("secret_key_source") == "file" else ""),
        ]  # fmt: skip
        problems = entry["problems"] + env_name_problems(entry)
        if problems:
            lines += ["", "Not adopted until these are solved:"]
            lines += [f"- {p}" for p in problems]
        if entry["changes"]:
            lines += ["", "The first deploy will change:"] + [f"- {c}" for c in entry["changes"]]
        if not held_back_entry(entry, result.get("conflicts") or []):
            lines += ["", "After the first deploy:"] + [f"- {step}" for step in after_first_deploy(host, entry, name)]
        lines.append("")
    if result.get("conflicts"):
        lines += ["## Conflicts", ""] + [f"- {c}" for c in result["conflicts"]] + [""]
    return "\n".join(lines).rstrip() + "\n"
