# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pinned.release.adopt_inventory: write the adopted tenants, their vaulted secrets and the report, on the controller."""

from __future__ import annotations

import os

import yaml
from ansible.errors import AnsibleActionFail
from ansible.parsing.vault import VaultLib
from ansible.plugins.action import ActionBase

from ansible_collections.pinned.release.plugins.module_utils._journal import write_atomic
from ansible_collections.pinned.release.plugins.plugin_utils._adopt_inventory import SECRETS_VARIABLE, host_plan

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


def declared_tenants(path: str) -> list:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        return []
    except (OSError, yaml.YAMLError) as exc:
        raise AnsibleActionFail(f"{path} cannot be read ({exc}): fix it before adopting") from None
    return list((data if isinstance(data, dict) else {}).get("release_tenants") or [])


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def _vault(self, wanted):
        secrets = list(getattr(getattr(self._loader, "_vault", None), "secrets", None) or [])
        if wanted:
            secrets = [(vault_id, secret) for vault_id, secret in secrets if vault_id == wanted]
        return secrets[0] if secrets else None

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
        files = []
        for plan in plans:
            host_dir = os.path.join(args["inventory_dir"], "host_vars", plan["host"])
            tenants_file = os.path.join(host_dir, "release_tenants.yml")
            report_file = os.path.join(args["report_dir"], f"{plan['host']}.md")
            existing = []
            for path in (os.path.join(args["inventory_dir"], "host_vars", f"{plan['host']}.yml"), tenants_file):
                found = declared_tenants(path)
                if found and args["existing"] == "refuse":
                    raise AnsibleActionFail(
                        f"{path} already declares release_tenants for {plan['host']}: nothing was written; move it "
                        "aside, or re-run with -e adopt_existing=merge to add only the tenants it does not declare"
                    )
                existing += found
            known = {t.get("name") for t in existing if isinstance(t, dict)}
            tenants = [t for t in plan["tenants"] if t["name"] not in known]
            secrets = {name: values for name, values in plan["secrets"].items() if name not in known}
            files.append((report_file, plan["report"], 0o644))
            if tenants and tenants_file not in {p for p, _c, _m in files}:
                merged = (
                    [t for t in existing if isinstance(t, dict)] + tenants if args["existing"] == "merge" else tenants
                )
                text = HEADER.format(host=plan["host"], report=report_file) + yaml.safe_dump(
                    {"release_tenants": merged}, sort_keys=False, default_flow_style=False
                )
                files.append((tenants_file, text, 0o644))
            if secrets:
                clear = yaml.safe_dump({SECRETS_VARIABLE: secrets}, sort_keys=True)
                if vault is not None:
                    vault_id, secret = vault
                    clear = VaultLib([vault]).encrypt(clear, secret=secret, vault_id=vault_id).decode()
                files.append((os.path.join(host_dir, "adopted_secrets.yml"), clear, 0o600))
        changed = False
        for path, content, _mode in files:
            try:
                with open(path, encoding="utf-8") as handle:
                    same = handle.read() == content
            except OSError:
                same = False
            changed = changed or not same
        if not self._task.check_mode:
            for path, content, mode in files:
                write_atomic(path, content, mode)
        result.update(
            changed=changed,
            files=[path for path, _c, _m in files],
            adopted={plan["host"]: [t["name"] for t in plan["tenants"]] for plan in plans},
            held_back={plan["host"]: [e["container"] for e in plan["held_back"]] for plan in plans},
            encrypted=vault is not None,
        )
        return result
