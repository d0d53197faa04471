# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pinned.release.adopt_inventory: write the adopted tenants, their vaulted secrets and the report, on the controller."""

from __future__ import annotations

import io
import os

import yaml
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.parsing.vault import VaultHelper, VaultLib
from ansible.parsing.yaml.dumper import AnsibleDumper
from ansible.plugins.action import ActionBase
from ansible.template import is_trusted_as_template

from ansible_collections.pinned.release.plugins.module_utils._fs import write_atomic
from ansible_collections.pinned.release.plugins.plugin_utils._adopt_inventory import (
    SECRETS_VARIABLE,
    Unsafe,
    host_plan,
    literal,
)

ARGUMENT_SPEC = {
    "results": {"type": "dict", "required": True, "no_log": True},
    "inventory_dir": {"type": "path", "required": True},
    "report_dir": {"type": "path", "required": True},
    "container_prefix": {"type": "str", "default": "openwebui-"},
    "existing": {"type": "str", "choices": ["refuse", "merge"], "default": "refuse"},
    "secrets_in_clear": {"type": "bool", "default": False},
    "vault_id": {"type": "str"},
}
HEADER = "# Written by pinned.release adopt.yml from what ran on {host}; see {report}.\n---\n"


HOST_FILE_EXTENSIONS = (".yml", ".yaml", ".json")


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


def host_layout(host_vars: str, host: str) -> tuple:
    """``(folder, file to move into it or None, files Ansible reads for the host)``.

    Once ``host_vars/<host>/`` exists Ansible reads only that folder, and ``host_vars/<host>.yml`` no longer: adoption
    writes into the folder, so a host file is moved into it unchanged, or every variable in it would be lost.
    """
    folder = os.path.join(host_vars, host)
    host_file = next((folder + ext for ext in HOST_FILE_EXTENSIONS if os.path.isfile(folder + ext)), None)
    if os.path.isdir(folder):
        read = [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(HOST_FILE_EXTENSIONS)]
        return folder, None, read
    return folder, host_file, [host_file] if host_file else []


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def _vault(self, wanted):
        secrets = list(getattr(getattr(self._loader, "_vault", None), "secrets", None) or [])
        if wanted:
            secrets = [(vault_id, secret) for vault_id, secret in secrets if vault_id == wanted]
        return secrets[0] if secrets else None

    def _read_vars(self, path: str) -> dict:
        """A vars file as Ansible reads it ({} when absent): vault-encrypted files and values decrypted."""
        if not os.path.exists(path):
            return {}
        try:
            data = self._loader.load_from_file(path, cache="none", trusted_as_template=True)
        except AnsibleError as exc:
            raise AnsibleActionFail(
                f"{path} cannot be read ({exc.message}): fix it, or give its vault secret"
            ) from None
        return as_read(data) if isinstance(data, dict) else {}

    @staticmethod
    def _write(moves: list, files: list) -> None:
        """Every folder first (a folder that cannot be made stops the run before anything moved), then the moves of
        host files into their folders, then the files, each atomically."""
        path, made = "", []
        try:
            for path in sorted({os.path.dirname(p) for p, _c, _m in files} | {os.path.dirname(t) for _s, t in moves}):
                if not os.path.isdir(path):
                    os.makedirs(path)
                    made.append(path)
        except OSError as exc:
            for folder in reversed(made):  # an empty host_vars/<host>/ would hide host_vars/<host>.yml from Ansible
                os.rmdir(folder)
            raise AnsibleActionFail(
                f"cannot make the folder {path} ({exc.strerror}): nothing was written; fix it (a file in its place? "
                "permissions?), then re-run"
            ) from None
        try:
            for path, target in moves:
                os.rename(path, target)
            for path, content, mode in files:
                write_atomic(path, content, mode)
        except OSError as exc:
            raise AnsibleActionFail(
                f"writing {path} failed ({exc.strerror}); what was written before it stays (the secrets before the "
                "tenants that name them): fix it, then re-run with -e adopt_existing=merge"
            ) from None

    @staticmethod
    def _declared_elsewhere(task_vars: dict, host: str, in_host_vars: bool) -> None:
        """Refuse when Ansible finds release_tenants for ``host`` outside its host_vars (the hosts file, group_vars):
        the list adoption writes in host_vars would hide it, and the next deploy would remove those tenants' sites."""
        hostvars = (task_vars or {}).get("hostvars")
        raw = hostvars.raw_get(host) if hostvars is not None and host in hostvars else {}
        if not isinstance(raw, dict) or not raw.get("release_tenants") or in_host_vars:
            return
        raise AnsibleActionFail(
            f"release_tenants for {host} is declared in the inventory's hosts file or group_vars, not in host_vars/"
            f"{host}/: adoption would write a list there that hides it (the next deploy would remove those tenants' "
            f"sites); nothing was written: move that list into host_vars/{host}/release_tenants.yml, then re-run "
            "with -e adopt_existing=merge"
        )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        plans = [
            host_plan(host, found or {}, args["container_prefix"]) for host, found in sorted(args["results"].items())
        ]
        vault = self._vault(args["vault_id"])
        any_secret = any(plan["secrets"] for plan in plans)
        if any_secret and vault is None and not args["secrets_in_clear"]:
            raise AnsibleActionFail(
                "the adopted tenants have secrets and no vault password was given: run with --vault-id adopt@prompt "
                "(or --vault-password-file FILE), or -e adopt_secrets_in_clear=true to write them unencrypted"
            )
        files, moves = [], []
        for plan in plans:
            host_dir, host_file, read = host_layout(os.path.join(args["inventory_dir"], "host_vars"), plan["host"])
            tenants_file = os.path.join(host_dir, "release_tenants.yml")
            secrets_file = os.path.join(host_dir, "adopted_secrets.yml")
            host_vars = {path: self._read_vars(path) for path in read}
            self._declared_elsewhere(task_vars, plan["host"], any("release_tenants" in v for v in host_vars.values()))
            existing = []
            for path, variables in host_vars.items():
                found = list(variables.get("release_tenants") or [])
                if found and args["existing"] == "refuse":
                    raise AnsibleActionFail(
                        f"{path} already declares release_tenants for {plan['host']}: nothing was written; move it "
                        "aside, or re-run with -e adopt_existing=merge to add only the tenants it does not declare"
                    )
                if found and path != tenants_file:
                    raise AnsibleActionFail(
                        f"{path} declares release_tenants for {plan['host']}: merging writes one list to "
                        f"{tenants_file} and Ansible would use only one of the two; move that list there, then re-run"
                    )
                existing += found
            if host_file:
                moves.append((host_file, os.path.join(host_dir, os.path.basename(host_file))))
            known = {t.get("name") for t in existing if isinstance(t, dict)}
            tenants = [t for t in plan["tenants"] if t["name"] not in known]
            kept = self._read_vars(secrets_file).get(SECRETS_VARIABLE) or {} if plan["secrets"] else {}
            # A tenant declared before keeps the secrets adopted then; one whose secrets never reached the file (a
            # run that died between the two files) gets them now.
            secrets = {
                name: values for name, values in plan["secrets"].items() if name not in known or name not in kept
            }
            report_file = os.path.join(args["report_dir"], f"{plan['host']}.md")
            # The secrets before the tenants that refer to them: a run that dies in between leaves no dangling name.
            if secrets:
                clear = dump({SECRETS_VARIABLE: {**kept, **secrets}}, sort_keys=True)
                if vault is not None:
                    vault_id, secret = vault
                    clear = VaultLib([vault]).encrypt(clear, secret=secret, vault_id=vault_id).decode()
                files.append((secrets_file, clear, 0o600))
            if tenants:
                merged = [t for t in existing if isinstance(t, dict)] + tenants
                text = HEADER.format(host=plan["host"], report=report_file) + dump({"release_tenants": merged})
                files.append((tenants_file, text, 0o644))
            files.append((report_file, plan["report"], 0o644))
        changed = bool(moves)
        for path, content, _mode in files:
            try:
                with open(path, encoding="utf-8") as handle:
                    same = handle.read() == content
            except OSError:
                same = False
            changed = changed or not same
        if not self._task.check_mode:
            self._write(moves, files)
        result.update(
            changed=changed,
            files=[path for path, _c, _m in files],
            moved=[f"{source} -> {target}" for source, target in moves],
            adopted={plan["host"]: [t["name"] for t in plan["tenants"]] for plan in plans},
            held_back={plan["host"]: [e["container"] for e in plan["held_back"]] for plan in plans},
            encrypted=vault is not None,
        )
        return result
