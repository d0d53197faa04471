# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pinned.release.notify: tell the configured targets about a release event; never fails the release.

Webhooks (generic JSON and Slack-compatible) are posted from the controller, side by side, each with a
short timeout; e-mail goes through community.general.mail. Whatever goes wrong with a target (unreachable,
an error answer, a bad entry in the inventory, a refusing SMTP server) becomes one warning line: the
result is never failed and never changed.
"""

from __future__ import annotations

import functools
import json
import socket
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.urls import open_url
from ansible.plugins.action import ActionBase

from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.plugin_utils._controller import operator
from ansible_collections.pinned.release.plugins.plugin_utils._notify import (
    EVENTS,
    compose,
    due,
    inventory_secrets,
    one_line,
    parse_targets,
    parse_timeout,
    secret_values,
)

MAIL_MODULE = "community.general.mail"
ARGUMENT_SPEC = {
    "event": {"type": "str", "required": True, "choices": list(EVENTS)},
    "facts": {"type": "dict", "default": {}},
    # Raw: a malformed setting is a warning here, never a failed release.
    "targets": {"type": "raw", "default": [], "no_log": True},
    "timeout": {"type": "raw", "default": 5},
}


def post(url: str, body: bytes, headers: dict, timeout: int) -> str:
    """Posts ``body``; returns '' when the target took it, else why not (one line)."""
    try:
        answer = open_url(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout,
            http_agent="pinned.release",
            follow_redirects="none",
        )
        answer.read(4096)
        return ""
    except urllib.error.HTTPError as error:
        return f"answered HTTP {error.code} {error.reason}"
    except (TimeoutError, socket.timeout):
        return f"no answer within {timeout} s"
    except urllib.error.URLError as error:
        if isinstance(error.reason, (TimeoutError, socket.timeout)):
            return f"no answer within {timeout} s"
        return f"unreachable ({one_line(error.reason, 120)})"
    except (OSError, ValueError, ConnectionError) as error:
        return f"unreachable ({one_line(error, 120)})"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if not due(args["event"], args["facts"]):
            result.update(changed=False, due=False, sent=[], not_sent=[])
            return result
        targets, problems = parse_targets(args["targets"])
        timeout, timeout_problem = parse_timeout(args["timeout"])
        problems += [timeout_problem] if timeout_problem else []
        own = args["targets"] if isinstance(args["targets"], list) else []
        own_secrets = secret_values(own) | {str(t["url"]) for t in own if isinstance(t, dict) and t.get("url")}
        mask = SecretMask(inventory_secrets(task_vars, self._templar.template) | own_secrets)
        message = compose(
            args["event"], args["facts"], operator(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), mask
        )
        chosen = [t for t in targets if args["event"] in t.events]
        result.update(changed=False, due=True, message=message, sent=[], not_sent=[])
        warnings = [one_line(mask.text(p)) for p in problems]
        if self._task.check_mode:
            result["would_send"] = [t.name for t in chosen]
            result["warnings"] = warnings
            return result
        mail = functools.partial(self._mail, task_vars=task_vars)
        side_by_side = [t for t in chosen if t.side_by_side]
        with ThreadPoolExecutor(max_workers=max(1, len(side_by_side))) as pool:
            pending = {t.name: pool.submit(t.send, message, timeout, post, mail) for t in side_by_side}
            outcomes = {t.name: t.send(message, timeout, post, mail) for t in chosen if not t.side_by_side}
            outcomes.update({name: future.result() for name, future in pending.items()})
        for target in chosen:
            why = outcomes[target.name]
            if why:
                result["not_sent"].append({"target": target.name, "why": mask.text(why)})
                warnings.append(one_line(mask.text(
                    f"notification {args['event']} to {target.name} ({target.type}, {target.where()}) not sent: {why}; "
                    "the release goes on"
                )))  # fmt: skip
            else:
                result["sent"].append(target.name)
        result["warnings"] = warnings
        return result

    def _mail(self, arguments: dict, task_vars: dict) -> str:
        try:
            outcome = self._execute_module(module_name=MAIL_MODULE, module_args=arguments, task_vars=task_vars)
        except Exception as error:  # community.general missing, say: a warning, never a failure
            return one_line(error, 200)
        if outcome.get("failed"):
            return one_line(outcome.get("msg") or json.dumps(outcome)[:200], 200)
        return ""
