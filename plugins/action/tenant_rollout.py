# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of pinned.release.tenant_rollout: who runs it, and recovery from this controller's own crash.

It adds the controller's identity (host, process, run id shared by every host of the playbook run) and the
inventory name to the module's arguments. When the host is locked by a run this same controller started and
whose process is gone (the operator's laptop died, ansible-playbook was killed), it calls the module again with
that run's id: the module waits for the run's transaction to end on the host if it still runs, recovers from
its journal, and records the takeover in the audit log. A lock held by another controller is never taken here:
the refusal names the command to run once that run is known to be dead.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.pinned.release.plugins.plugin_utils._controller import (
    controller_identity,
    controller_run_gone,
)

MODULE = "pinned.release.tenant_rollout"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        me = controller_identity()
        args = dict(self._task.args)
        args.setdefault("run_id", me["run_id"])
        args["controller"] = {k: me[k] for k in ("host", "pid", "start_ticks", "boot_id", "command")}
        args.setdefault("host_name", task_vars.get("inventory_hostname"))
        outcome = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        holder = (outcome.get("lock") or {}).get("holder") or {}
        if outcome.get("failed") and holder and not args.get("break_lock") and not self._task.check_mode:
            if controller_run_gone(holder.get("controller") or {}, me):
                args["break_lock"] = holder.get("run_id")
                outcome = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
                if not outcome.get("failed"):
                    outcome["lock_taken_over"] = holder
            elif (
                me.get("command")
                and "tenant_break_lock=" in outcome.get("msg", "")
                and not (outcome.get("lock") or {}).get("live")
            ):
                outcome["msg"] += f" The command: {me['command']} -e tenant_break_lock={holder.get('run_id')}"
        result.update(outcome)
        return result
