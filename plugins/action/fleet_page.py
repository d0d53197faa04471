# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pinned.release.fleet_page: record what a run saw of its hosts and redraw the fleet page, on the controller."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from ansible.plugins.action import ActionBase

from ansible_collections.pinned.release.plugins.module_utils._files import read_text
from ansible_collections.pinned.release.plugins.module_utils._journal import JournalError
from ansible_collections.pinned.release.plugins.module_utils._pins import PinError, load_pin_file
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.plugin_utils._fleet_page import (
    candidate_hosts,
    load_hosts,
    render,
    store_host,
    write_page,
)
from ansible_collections.pinned.release.plugins.plugin_utils._notify import inventory_secrets

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "results": {"type": "dict", "default": {}},
    "failures": {"type": "dict", "default": {}},
    "drift": {"type": "dict"},
    "pin_file": {"type": "path", "required": True},
    "evidence_dir": {"type": "path", "default": ""},
    "test_hosts": {"type": "list", "elements": "str"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        page = args["path"]
        result.update(changed=False, path=page)
        if self._task.check_mode:
            return result
        store = os.path.join(os.path.dirname(page), "hosts")
        now = datetime.now(timezone.utc).replace(microsecond=0)
        observed = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        drift = args["drift"]
        mask = SecretMask(inventory_secrets(task_vars, self._templar.template))
        try:
            for host, outcome in sorted(args["results"].items()):
                outcome = outcome if isinstance(outcome, dict) else {}
                rows = None
                if drift is not None and host in (drift.get("hosts") or {}):
                    rows = [r for r in drift.get("rows") or [] if r.get("host") == host]
                failure = args["failures"].get(host) or (outcome.get("msg") if outcome.get("failed") else None)
                store_host(store, host, mask.apply(outcome.get("status"), True) if "status" in outcome else None,
                           mask.text(failure) if failure else None, mask.apply(rows, True), observed)  # fmt: skip
            pin, history = load_pin_file(read_text(args["pin_file"], "pin file"), args["pin_file"])  # none yet: no pin
            hosts = load_hosts(store)
            testing = args["test_hosts"]
            if testing is None:
                testing = candidate_hosts(task_vars.get("groups") or {})
            drawn = render(hosts, pin or {}, history, args["evidence_dir"], os.path.dirname(page), now, testing)
            write_page(page, drawn)
        except (OSError, JournalError, PinError) as error:
            # The page reports on the release; it never fails it.
            result["warnings"] = [f"the fleet page {page} was not written: {error}; the release itself is done"]
            return result
        result.update(hosts=sorted(hosts), tenants=sum(len(h.get("tenants") or []) for h in hosts.values()))
        return result
