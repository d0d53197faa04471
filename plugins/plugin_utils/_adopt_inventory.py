# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adoption on the controller: tenant declarations, the secrets to vault and the report, from adopt_facts results;
the files they go to in the inventory, and writing them (nothing, or every folder first)."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

import yaml
from ansible.parsing.vault import VaultHelper
from ansible.parsing.yaml.dumper import AnsibleDumper
from ansible.template import is_trusted_as_template

from ansible_collections.pinned.release.plugins.module_utils._fs import write_atomic
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


class AdoptionError(Exception):
    """Adoption cannot go on; the message says what was (not) written and what to do."""


HEADER = "# Written by pinned.release adopt.yml from what ran on {host}; see {report}.\n---\n"
HOST_FILE_EXTENSIONS = (".yml", ".yaml", ".json")
TENANTS_FILE, SECRETS_FILE = "release_tenants.yml", "adopted_secrets.yml"


class AdoptionDumper(type(AnsibleDumper(io.StringIO()))):
    """Ansible's dumper (vaulted values stay encrypted), writing an ``Unsafe`` value as ``!unsafe``."""


AdoptionDumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def as_read(value: object) -> object:
    """What a vars file holds, ready to be written back as Ansible read it: a value it never templated (``!unsafe``)
    stays so; vaulted values stay encrypted."""
    if isinstance(value, dict):
        return {key: as_read(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_read(item) for item in value]
    if isinstance(value, str) and VaultHelper.get_ciphertext(value, with_tags=False) is None:
        return value if is_trusted_as_template(value) else literal(str(value))
    return value


def dump(data: dict, sort_keys: bool = False) -> str:
    return yaml.dump(data, Dumper=AdoptionDumper, sort_keys=sort_keys, default_flow_style=False)


@dataclass(frozen=True)
class HostLayout:
    """Where a host's variables are: its folder, a host file to move into it (or None), the files Ansible reads.

    Once ``host_vars/<host>/`` exists Ansible reads only that folder, and ``host_vars/<host>.yml`` no longer: adoption
    writes into the folder, so a host file is moved into it unchanged, or every variable in it would be lost.
    """

    folder: str
    host_file: Optional[str]
    read: tuple


def host_layout(host_vars: str, host: str) -> HostLayout:
    folder = os.path.join(host_vars, host)
    host_file = next((folder + ext for ext in HOST_FILE_EXTENSIONS if os.path.isfile(folder + ext)), None)
    if os.path.isdir(folder):
        read = tuple(os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(HOST_FILE_EXTENSIONS))
        return HostLayout(folder, None, read)
    return HostLayout(folder, host_file, (host_file,) if host_file else ())


@dataclass
class Writes:
    """What adoption writes: host files moved into their folders, then files ``(path, content, mode)``."""

    moves: list = field(default_factory=list)
    files: list = field(default_factory=list)

    def changed(self) -> bool:
        """Whether writing would change anything (a move, or a file whose content differs)."""
        for path, content, _mode in self.files:
            try:
                with open(path, encoding="utf-8") as handle:
                    if handle.read() != content:
                        return True
            except OSError:
                return True
        return bool(self.moves)

    def write(self) -> None:
        """Every folder first (a folder that cannot be made stops the run before anything moved), then the moves of
        host files into their folders, then the files, each atomically."""
        path, made = "", []
        try:
            for path in sorted({os.path.dirname(p) for p, _c, _m in self.files}
                               | {os.path.dirname(t) for _s, t in self.moves}):  # fmt: skip
                if not os.path.isdir(path):
                    os.makedirs(path)
                    made.append(path)
        except OSError as exc:
            for folder in reversed(made):  # an empty host_vars/<host>/ would hide host_vars/<host>.yml from Ansible
                os.rmdir(folder)
            raise AdoptionError(
                f"cannot make the folder {path} ({exc.strerror}): nothing was written; fix it (a file in its place? "
                "permissions?), then re-run"
            ) from None
        try:
            for path, target in self.moves:
                os.rename(path, target)
            for path, content, mode in self.files:
                write_atomic(path, content, mode)
        except OSError as exc:
            raise AdoptionError(
                f"writing {path} failed ({exc.strerror}); what was written before it stays (the secrets before the "
                "tenants that name them): fix it, then re-run with -e adopt_existing=merge"
            ) from None


def check_vault(plans: list, has_vault: bool, secrets_in_clear: bool) -> None:
    """Secrets are written vault-encrypted, or in clear only when asked."""
    if any(plan["secrets"] for plan in plans) and not has_vault and not secrets_in_clear:
        raise AdoptionError(
            "the adopted tenants have secrets and no vault password was given: run with --vault-id adopt@prompt "
            "(or --vault-password-file FILE), or -e adopt_secrets_in_clear=true to write them unencrypted"
        )


def _existing_tenants(host: str, host_vars: dict, tenants_file: str, existing: str) -> list:
    """The tenants the host's variables already declare, when adoption may add to them (``existing``: merge)."""
    declared = []
    for path, variables in host_vars.items():
        found = list(variables.get("release_tenants") or [])
        if found and existing == "refuse":
            raise AdoptionError(
                f"{path} already declares release_tenants for {host}: nothing was written; move it aside, or re-run "
                "with -e adopt_existing=merge to add only the tenants it does not declare"
            )
        if found and path != tenants_file:
            raise AdoptionError(
                f"{path} declares release_tenants for {host}: merging writes one list to {tenants_file} and Ansible "
                "would use only one of the two; move that list there, then re-run"
            )
        declared += found
    return declared


def host_writes(plan: dict, layout: HostLayout, report_dir: str, existing: str, read_vars: Callable[[str], dict],
                inventory_declares: bool, encrypt: Optional[Callable[[str], str]]) -> Writes:  # fmt: skip
    """What adoption writes for one host (``plan``: ``host_plan``).

    ``read_vars(path)``: a vars file as Ansible reads it ({} when absent). ``inventory_declares``: Ansible finds
    release_tenants for the host somewhere in the inventory (when not in its host_vars: the hosts file or group_vars).
    ``encrypt``: vault-encrypts a text (None: the secrets are written in clear).
    """
    host = plan["host"]
    tenants_file, secrets_file = os.path.join(layout.folder, TENANTS_FILE), os.path.join(layout.folder, SECRETS_FILE)
    host_vars = {path: read_vars(path) for path in layout.read}
    if inventory_declares and not any("release_tenants" in v for v in host_vars.values()):
        # the list adoption writes in host_vars would hide it, and the next deploy would remove those tenants' sites
        raise AdoptionError(
            f"release_tenants for {host} is declared in the inventory's hosts file or group_vars, not in host_vars/"
            f"{host}/: adoption would write a list there that hides it (the next deploy would remove those tenants' "
            f"sites); nothing was written: move that list into host_vars/{host}/{TENANTS_FILE}, then re-run "
            "with -e adopt_existing=merge"
        )
    declared = _existing_tenants(host, host_vars, tenants_file, existing)
    writes = Writes()
    if layout.host_file:
        writes.moves.append((layout.host_file, os.path.join(layout.folder, os.path.basename(layout.host_file))))
    known = {t.get("name") for t in declared if isinstance(t, dict)}
    tenants = [t for t in plan["tenants"] if t["name"] not in known]
    kept = read_vars(secrets_file).get(SECRETS_VARIABLE) or {} if plan["secrets"] else {}
    # A tenant declared before keeps the secrets adopted then; one whose secrets never reached the file (a run that
    # died between the two files) gets them now.
    secrets = {name: values for name, values in plan["secrets"].items() if name not in known or name not in kept}
    report_file = os.path.join(report_dir, f"{host}.md")
    # The secrets before the tenants that refer to them: a run that dies in between leaves no dangling name.
    if secrets:
        clear = dump({SECRETS_VARIABLE: {**kept, **secrets}}, sort_keys=True)
        writes.files.append((secrets_file, encrypt(clear) if encrypt else clear, 0o600))
    if tenants:
        merged = [t for t in declared if isinstance(t, dict)] + tenants
        text = HEADER.format(host=host, report=report_file) + dump({"release_tenants": merged})
        writes.files.append((tenants_file, text, 0o644))
    writes.files.append((report_file, plan["report"], 0o644))
    return writes
