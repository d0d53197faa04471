# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pinned.release.adopt_inventory: write the adopted tenants, their vaulted secrets and the report, on the controller.

The rules are in plugin_utils/_adopt_inventory.py; here is what only Ansible has: the vault secrets given to the
run, vars files read as Ansible reads them, and the inventory's own view of each host."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.parsing.vault import VaultLib
from ansible.plugins.action import ActionBase

from ansible_collections.pinned.release.plugins.plugin_utils._adopt_inventory import (
    AdoptionError,
    Writes,
    as_read,
    check_vault,
    host_layout,
    host_plan,
    host_writes,
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
            raise AdoptionError(f"{path} cannot be read ({exc.message}): fix it, or give its vault secret") from None
        return as_read(data) if isinstance(data, dict) else {}

    @staticmethod
    def _inventory_declares(task_vars: dict, host: str) -> bool:
        """Whether Ansible finds release_tenants for ``host`` anywhere in the inventory."""
        hostvars = (task_vars or {}).get("hostvars")
        raw = hostvars.raw_get(host) if hostvars is not None and host in hostvars else {}
        return isinstance(raw, dict) and bool(raw.get("release_tenants"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        plans = [
            host_plan(host, found or {}, args["container_prefix"]) for host, found in sorted(args["results"].items())
        ]
        vault = self._vault(args["vault_id"])

        def encrypt(text: str) -> str:
            vault_id, secret = vault
            return VaultLib([vault]).encrypt(text, secret=secret, vault_id=vault_id).decode()

        writes = Writes()
        try:
            check_vault(plans, vault is not None, args["secrets_in_clear"])
            for plan in plans:
                layout = host_layout(os.path.join(args["inventory_dir"], "host_vars"), plan["host"])
                host = host_writes(plan, layout, args["report_dir"], args["existing"], self._read_vars,
                                   self._inventory_declares(task_vars, plan["host"]), encrypt if vault is not None else None)  # fmt: skip
                writes.moves += host.moves
                writes.files += host.files
            changed = writes.changed()
            if not self._task.check_mode:
                writes.write()
        except AdoptionError as exc:
            raise AnsibleActionFail(str(exc)) from None
        result.update(
            changed=changed,
            files=[path for path, _c, _m in writes.files],
            moved=[f"{source} -> {target}" for source, target in writes.moves],
            adopted={plan["host"]: [t["name"] for t in plan["tenants"]] for plan in plans},
            held_back={plan["host"]: [e["container"] for e in plan["held_back"]] for plan in plans},
            encrypted=vault is not None,
        )
        return result
