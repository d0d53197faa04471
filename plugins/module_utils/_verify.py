# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""verify_container's look at a host's tenants as the release transaction declares them.

It is the transaction's own read-only look (``Planner.plan``, what ``tenant_rollout`` reports in check mode): the
same specs, the same comparison (``_drift.compare``) and the same ``Readiness``, so drift is exactly what a deploy
would change or refuse. One engine listing serves the whole host; each tenant's container is inspected once.
"""

from __future__ import annotations

from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._drift import DriftSpecError, drift_message, drift_summary
from ansible_collections.pinned.release.plugins.module_utils._nginx import Nginx
from ansible_collections.pinned.release.plugins.module_utils._reference import parse_pinned_reference
from ansible_collections.pinned.release.plugins.module_utils._rollout import Rollout
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import transaction_settings
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import MoveJournal
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.module_utils._settings import typed_values
from ansible_collections.pinned.release.plugins.module_utils._tenants import checked_specs, settings_problems

# What the look finds about the host beyond its tenants' containers, as tenant_rollout's check mode names it.
HOST_FINDINGS = ("shared", "certificates", "sites_to_change", "sites_to_remove", "pending_journal")


def _entry(tenant: dict) -> dict:
    """A tenant of the plan as one of verify_container's containers entries."""
    return {
        "name": tenant["container"],
        "tenant": tenant["name"],
        "exists": tenant["status"] is not None,
        "status": tenant["status"],
        "health": tenant["health"],
        "restart_count": tenant["restart_count"],
        "image": tenant["current_image"],
        "digest": tenant["current_digest"],
        "expected_digest": parse_pinned_reference(tenant["image"]).digest,
        "drift": tenant["drift"],
        "action": tenant["action"],
        "files_changed": tenant["files_changed"],
    }


def check_tenants(engine, params: dict, mask: SecretMask, selector: Optional[dict]) -> dict:
    """verify_container's result for ``params['tenants']`` as tenant_rollout would be given them."""
    values, problems = typed_values(params["settings"] or {})
    problems += settings_problems(values, as_role=False) if not problems else []
    if problems:
        raise DriftSpecError("; ".join(problems))
    app = params["app"] or {}
    specs = checked_specs(params["tenants"], app, params["image"])
    nginx = Nginx(values["nginx.site_dir"], values["nginx.test_command"], values["nginx.reload_command"],
                  values["nginx.pid_file"]) if values["nginx.enabled"] else None  # fmt: skip
    run = {"run_id": "verify", "operator": "", "reason": "drift check", "host": ""}  # a look: nothing is run
    look = Rollout(engine, specs, app, transaction_settings(values, app), run, MoveJournal(values["state_dir"]), nginx,
                   mask=mask)  # fmt: skip
    plan = look.planner.plan(selector)
    entries = [_entry(t) for t in plan["tenants"]]
    host = {key: plan[key] for key in HOST_FINDINGS}
    drifted_entries = [e for e in entries if e["drift"] or e["files_changed"]]
    unexpected = plan["unexpected"]
    # What tenant_rollout's check mode reports as changed: what the transaction would mend.
    remediable = bool(plan["sites_to_change"] or plan["sites_to_remove"] or plan["pending_journal"]
                      or any(e["action"] != "none" or e["files_changed"] for e in entries))  # fmt: skip
    result = {
        "changed": False,
        "containers": entries,
        "unexpected": unexpected,
        **host,
        "drifted": bool(drifted_entries or unexpected or any(host.values())),
        "remediable": remediable,
        "summary": drift_summary(entries, unexpected),
        "status": look.planner.status(values["audit_log"], look.planner.seen),
        "waited": 0.0,
    }
    if result["drifted"] and params["fail_on_drift"]:
        others = sum(len(v) for v in host.values())
        result["msg"] = drift_message(
            [{**e, "drift": e["drift"] + [{"field": f"file {f}", "expected": "as declared", "actual": "differs"}
                                          for f in e["files_changed"]]} for e in drifted_entries],
            unexpected,
        ) + (f"; {others} finding(s) about the host (isolation, certificates, nginx sites, journal)" if others else "")  # fmt: skip
        result["failed"] = True
    return result
