#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: watch_tenants
short_description: Watch the tenants a rollout changed for a while, for failures the health gate cannot see
version_added: 0.3.0
description:
  - After a rollout, polls each given tenant every O(interval) seconds for O(minutes), on the host, through the
    engine - a container gone, replaced, not running or restarted more than O(max_restarts) times; a health that goes
    from healthy to anything else (flapping); a log line since the watch began that matches one of O(error_patterns);
    more than O(max_server_errors) answers with a 5xx status in the tenant's nginx access log since the watch began.
  - The containers are those the rollout created, so every restart since they were created counts, and a health check
    that reports unhealthy at any poll is a breach. A log line is shown with the tenants' secret values masked, and a
    5xx example without its query string.
  - Each of those is a breach, named with its tenant and its evidence (the log line, the count, the exit code). With
    O(stop_on_breach) (the default) the watch ends at the first poll that finds one, so a rollback can start at once.
  - What it cannot see - a leak over days, an error the app never logs, a page that answers 200 with the wrong
    content - is for the testing checklist and for monitoring.
author:
  - pinned.release maintainers (@pinned-release)
attributes:
  check_mode:
    support: full
    description:
      - In check mode nothing was rolled out, so nothing is watched (C(skipped)).
  diff_mode:
    support: none
    description:
      - It only reads.
options:
  tenants:
    description:
      - The declared tenants (C(release_tenants) as it is); their secret values are masked in any log line shown.
  containers:
    description:
      - The tenants to watch, as P(pinned.release.tenant_rollout#module) returns them in
        RV(pinned.release.tenant_rollout#module:tenants) (C(name), C(container)); the role passes those it replaced or
        created. An empty list watches nothing and returns at once.
    type: list
    elements: dict
    required: true
  minutes:
    description: How long to watch, at most 1440 (a day).
    type: float
    required: true
  interval:
    description: Seconds between two polls.
    type: int
    default: 10
  error_patterns:
    description:
      - Regular expressions (Python's) a log line must not match. The default catches a Python traceback, a
        C(CRITICAL) line and "out of memory".
    type: list
    elements: str
    default: ['Traceback \(most recent call last\)', '\bCRITICAL\b', '(?i)\bout of memory\b']
  max_restarts:
    description: Restarts of a tenant's container (its restart policy at work) allowed during the watch.
    type: int
    default: 0
  max_server_errors:
    description: Answers with a 5xx status allowed in a tenant's nginx access log during the watch.
    type: int
    default: 5
  access_log_dir:
    description:
      - Folder of the tenants' own nginx access logs (C(pinned-release-<tenant>.access.log)), as the C(tenant) role's
        C(tenant_nginx_access_log_dir) writes them; empty - 5xx answers are not counted (RV(not_counted) says so).
    type: str
    default: ""
  stop_on_breach:
    description: End the watch at the first poll that finds a breach.
    type: bool
    default: true
extends_documentation_fragment:
  - pinned.release.docker
  - pinned.release.tenants
"""

EXAMPLES = r"""
- name: Roll out
  pinned.release.tenant_rollout:
    tenants: "{{ release_tenants }}"
    image: "{{ release_pin.image }}"
    app: >-
      {{ lookup('pinned.release.app_profile', release_app_profile | default('open-webui'),
                overrides=release_app | default({})).runtime }}
  register: rollout

- name: Watch what the rollout changed for 15 minutes
  pinned.release.watch_tenants:
    tenants: "{{ release_tenants }}"
    containers: "{{ rollout.tenants | selectattr('outcome', 'in', ['replaced', 'created']) | list }}"
    minutes: 15
  register: watch

- name: Stop here on a breach
  ansible.builtin.fail:
    msg: "{{ watch.breaches }}"
  when: watch.breached
"""

RETURN = r"""
breached:
  description: A watched tenant breached.
  returned: success
  type: bool
breaches:
  description: "C({tenant: [what]}) of the tenants that breached, each with its evidence (secret values masked)."
  returned: success
  type: dict
  sample: {acme: ["restarted 1 time(s) since the rollout (at most 0)"]}
summary:
  description: "The breaches in one line, C(<tenant>: <what>; ...) (empty when none), for a message."
  returned: success
  type: str
  sample: "acme: restarted 1 time(s) since the rollout (at most 0)"
watched_seconds:
  description: How long it watched.
  returned: success
  type: float
polls:
  description: How many polls it made.
  returned: success
  type: int
tenants:
  description:
    - Per watched tenant - C(container), C(restarts) (since the container was created), C(health_drops),
      C(error_lines), C(server_errors) (null when not counted), C(server_errors_not_counted), C(breaches).
  returned: success
  type: dict
not_counted:
  description: "C({tenant: why}) of the tenants whose 5xx answers were not counted (no access log of their own, unreadable)."
  returned: success
  type: dict
"""

from ansible_collections.pinned.release.plugins.module_utils._docker import (
    DOCKER_ARGUMENT_SPEC,
    EngineError,
    connect,
)
from ansible_collections.pinned.release.plugins.module_utils._engine import DockerEngine, EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._module import PinnedModule
from ansible_collections.pinned.release.plugins.module_utils._nginx import access_log_dir_problem, access_log_path
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask, finish
from ansible_collections.pinned.release.plugins.module_utils._tenants import TENANT_ARGUMENT_SPEC
from ansible_collections.pinned.release.plugins.module_utils._watch import (
    DEFAULT_ERROR_PATTERNS,
    MAX_WATCH_MINUTES,
    Watch,
    WatchRules,
    pattern_problems,
)

MAX_INTERVAL = 600


def validate(params: dict) -> list:
    """``[(tenant, container, access log or None)]`` to watch; ValueError naming what is wrong."""
    problems = pattern_problems(params["error_patterns"])
    if not 0 < params["minutes"] <= MAX_WATCH_MINUTES:
        problems.append(
            f"minutes must be more than 0 and at most {MAX_WATCH_MINUTES} (a day), got {params['minutes']:g}"
        )
    if not 1 <= params["interval"] <= MAX_INTERVAL:
        problems.append(f"interval must be 1 to {MAX_INTERVAL} seconds, got {params['interval']}")
    for key in ("max_restarts", "max_server_errors"):
        if params[key] < 0:
            problems.append(f"{key} must be 0 or more, got {params[key]}")
    log_dir = access_log_dir_problem(params["access_log_dir"])
    if log_dir:
        problems.append(log_dir.replace("nginx.access_log_dir", "access_log_dir", 1))
    declared = {t.get("name") for t in params["tenants"] if isinstance(t, dict)}
    watched = []
    for index, entry in enumerate(params["containers"]):
        name, container = entry.get("name"), entry.get("container")
        if not isinstance(name, str) or not isinstance(container, str) or not name or not container:
            problems.append(f"containers[{index}] must have a tenant name and a container name (text): pass "
                            "tenant_rollout's tenants result")  # fmt: skip
        elif name not in declared:
            problems.append(f"containers[{index}]: tenant {name!r} is not among the declared tenants")
        else:
            log = access_log_path(params["access_log_dir"], name) if params["access_log_dir"] else None
            watched.append((name, container, log))
    if problems:
        raise ValueError("; ".join(problems))
    return watched


def run_module(params: dict, connect_engine, mask: SecretMask, clock=None, sleep=None) -> dict:
    """``connect_engine()``: the engine, reached only once the input is valid and there is something to watch."""
    watched = validate(params)
    if not watched:
        return {"changed": False, "breached": False, "breaches": {}, "summary": "", "watched_seconds": 0.0, "polls": 0,
                "tenants": {}, "not_counted": {}}  # fmt: skip
    rules = WatchRules(error_patterns=tuple(params["error_patterns"]), max_restarts=params["max_restarts"],
                       max_server_errors=params["max_server_errors"])  # fmt: skip
    timing = {k: v for k, v in (("clock", clock), ("sleep", sleep)) if v is not None}
    watch = Watch(connect_engine(), watched, rules, mask=mask.text, **timing)
    result = watch.run(params["minutes"] * 60, params["interval"], params["stop_on_breach"])
    return {"changed": False, **result}


def main() -> None:
    module = PinnedModule(
        argument_spec={
            "tenants": {"type": "list", "elements": "dict", "required": True, "options": TENANT_ARGUMENT_SPEC},
            "containers": {"type": "list", "elements": "dict", "required": True},
            "minutes": {"type": "float", "required": True},
            "interval": {"type": "int", "default": 10},
            "error_patterns": {"type": "list", "elements": "str", "default": list(DEFAULT_ERROR_PATTERNS)},
            "max_restarts": {"type": "int", "default": 0},
            "max_server_errors": {"type": "int", "default": 5},
            "access_log_dir": {"type": "str", "default": ""},
            "stop_on_breach": {"type": "bool", "default": True},
            **DOCKER_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    secrets = [v for t in module.params["tenants"] if isinstance(t, dict) for v in (t.get("secrets") or {}).values()]
    mask = SecretMask(secrets)
    if module.check_mode:
        module.exit_json(**finish(module, {"changed": False, "skipped": True,
                                           "msg": "nothing was rolled out in check mode, so nothing is watched"}, mask))  # fmt: skip
    result = module.result_of(
        lambda: run_module(module.params, lambda: DockerEngine(connect(module.params)), mask),
        mask,
        (ValueError, EngineError, EngineCallError),
    )
    module.exit_json(**finish(module, result, mask))


if __name__ == "__main__":
    main()
