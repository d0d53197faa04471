#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: tenant_rollout
short_description: Bring the tenants of one host to a digest in one crash-safe transaction on the host
version_added: 0.2.0
description:
  - Runs the whole release transaction of a host on that host, in one call - take the host's deploy lock,
    pull the image first (and check the exact digest is there), then per batch of tenants - create the new
    container, stop the old one (kept, renamed), snapshot the whole data folder, start the new one, wait until it
    is ready (failing fast on exit, crash loop or unhealthy), switch its nginx site to it, run the smoke checks
    through nginx, and commit; append an audit line per tenant; release the lock.
  - Before each step that changes something it writes the tenant's journal under O(state_dir), with the names of
    the containers and folders the step is about to make or rename. A failed batch is put back - the old container
    itself (its exact image and config), the data from before the move (the data the failed version ran on kept
    aside as C(data.failed-<time>) and named in the result, since users may have written there), the previous nginx
    site - every put-back step running even when an earlier one failed. The result and the audit line say per
    tenant where it stands. A new container gets its restart policy only once committed, so a host restart never
    starts a version that was not verified.
  - A run that finds a journal left by a run that died (host rebooted, process killed) first recovers each tenant
    as the step table says (docs/recovery.md) - a new version that was already started is judged now with the
    same readiness and smoke checks; passing, it is committed with what users wrote on it; failing, the tenant is
    put back and those writes are set aside and named - then goes on as planned. A lock left by such a run is taken
    over only when O(break_lock) names it (the action plugin does so by itself when the run that left it was
    started by this same controller and that process is gone), or is C(stale) and the lock is older than
    O(lock_max_age).
  - Tenants whose container already matches their declaration are left alone; nginx sites of tenants no longer
    declared are removed; the snapshots a rollback of the current or previous pin needs are never rotated away.
  - Secret values are passed only in O(tenants[].secrets), which is C(no_log), so Ansible never logs them on the
    host; the result masks them by exact value.
author:
  - pinned.release maintainers (@pinned-release)
extends_documentation_fragment:
  - pinned.release.docker
attributes:
  check_mode:
    support: full
    description: Reports per tenant what would be done and why (the drift), changes nothing, takes no lock.
  diff_mode:
    support: full
    description: Shows each container, env file and nginx file that would change (secret values never shown).
  action:
    support: full
    description: The action plugin adds the controller's identity and run id, and takes over a lock left by a dead run
      of this same controller.
options:
  image:
    description:
      - The C(repository@sha256:...) reference every tenant runs (a tag is refused), unless a tenant sets its own.
    type: str
    required: true
  tenants:
    description:
      - The tenants of this host (C(release_tenants) in inventory). Each becomes the container
        C(<app.container_prefix><name>), its data in C(<app.data_root>/<name>/data).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Lowercase letters, digits and C(-).
        type: str
        required: true
      domain:
        description: The host name nginx serves the tenant on.
        type: str
        required: true
      port:
        description: Port published on the app's bind address (loopback by default).
        type: int
        required: true
      env:
        description: Plain environment variables.
        type: dict
      secrets:
        description: Secret environment variables (never logged, never returned).
        type: dict
      memory:
        description: Memory limit, for example C(700m).
        type: str
      tls_cert:
        description: Certificate path on the host, for an HTTPS site.
        type: path
      tls_key:
        description: Key path on the host, with O(tenants[].tls_cert).
        type: path
      image:
        description: This tenant's own C(repository@sha256:...), instead of O(image).
        type: str
      adopt_from:
        description:
          - A container started by hand that this tenant takes over (C(adopt.yml) writes it). While the tenant has
            no managed container, that container is the one replaced - stopped, its data folder copied into the
            tenant's (the original never touched), then the managed container started on the copy; put back under
            its own name on failure; removed once the tenant runs (its data stays where it was).
          - Without it, a container of the tenant's name started by hand on other data is never replaced.
        type: dict
        suboptions:
          container:
            description: Its name.
            type: str
            required: true
          data:
            description: Where its data is on the host (a volume's C(_data) folder, or a bind mount's source).
            type: path
            required: true
  app:
    description:
      - The app profile's runtime (P(pinned.release.app_profile#lookup)'s C(runtime), C(release_app) merged over it, as
        the C(tenant) role passes it) - container prefix and port, data path and root, bind address, restart policy,
        env, health path and JSON, version check, snapshot excludes, nginx settings.
    type: dict
    required: true
  # BEGIN settings: generated by make docs from plugins/module_utils/_settings.py
  batch_size:
    description: Tenants replaced together on a host; the health gate waits for the whole batch, a failure puts it all back.
    type: int
    default: 1
  health_timeout:
    description: Seconds a new container has to become ready before it is put back (a crash loop or an unhealthy healthcheck
      fails at once).
    type: int
    default: 120
  snapshot_keep:
    description: Data snapshots kept per tenant, at least 2; the pre-upgrade snapshot of each digest in O(protect_digests) is
      kept too.
    type: int
    default: 5
  protect_digests:
    description: Digests whose pre-upgrade snapshots rotation never deletes.
    type: list
    elements: str
    default: []
  aside_keep:
    description: Set-aside data folders (C(data.failed-*), C(data.replaced-*)) kept per tenant. Older ones are deleted only when
      a snapshot holds the same bytes; the others (the only copy of some writes) are reported as a warning, never
      deleted.
    type: int
    default: 2
  restore_data_on_failure:
    description: When a new version that ran fails, put the data snapshot back (the data the failed version ran on is kept
      aside).
    type: bool
    default: true
  data_mode:
    description: C(current) runs the target on the data as it is. C(auto) (used by the C(rollback) role) restores the data from
      the snapshot taken when the tenant last left the target - first when the tenant still runs the version that
      snapshot was taken for (an emergency rollback across a migration), otherwise only when the target fails on the
      current data. C(restore) restores it first.
    type: str
    choices: [current, auto, restore]
    default: current
  restore_snapshots:
    description: "C({tenant name: snapshot path}) - start these tenants from that snapshot instead of their current data (the
      data replaced is kept aside as C(data.replaced-<time>))."
    type: dict
    default: {}
  smoke_checks:
    description: Checks through nginx once a tenant is ready, in the C(release_checklist) format - C(name), C(path), C(status)
      (default 200), C(json) (subset of the JSON body), C(json_keys), C(contains), C(content_type).
    type: list
    elements: dict
    default: []
  remove_undeclared:
    description: Remove managed containers no tenant of this host declares (their data stays); otherwise they are reported.
    type: bool
    default: false
  failure_scope:
    description: C(batch) (a rollout) - a tenant that fails puts its whole batch back and the tenants after it are not attempted.
      C(tenant) (used by the C(rollback) role) - only the failing tenant is put back; the others go on, so one tenant
      never takes the others back to the version rolled away from.
    type: str
    choices: [batch, tenant]
    default: batch
  nginx:
    description: nginx in front of the tenants.
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Manage one nginx site per tenant, a shared websocket map and a default server.
        type: bool
        default: true
      site_dir:
        description: Where the sites go; nginx must include C(*.conf) from there.
        type: path
        default: /etc/nginx/conf.d
      http_port:
        description: Port nginx listens on for plain HTTP.
        type: int
        default: 80
      https_port:
        description: Port nginx listens on for HTTPS (tenants with C(tls_cert)).
        type: int
        default: 443
      default_server:
        description: Answer requests for a name no tenant serves (Host or SNI) with nothing, not with the first tenant's site.
        type: bool
        default: true
      access_log_dir:
        description: "Folder of each tenant's own access log (C(pinned-release-<tenant>.access.log), e.g. C(/var/log/nginx)),
          which the post-release watch reads for 5xx answers. Empty (the default) - the sites log where nginx's own
          setting says and the watch counts no 5xx. Set, a site logs only there: nginx's main access log no longer
          gets that site's requests."
        type: str
        default: ""
      test_command:
        description: Command that validates nginx's configuration.
        type: list
        elements: str
        default: [nginx, -t]
      reload_command:
        description: Command that reloads nginx once its configuration validated.
        type: list
        elements: str
        default: [nginx, -s, reload]
      pid_file:
        description: nginx's pid file, to wait for the reload's new workers.
        type: path
        default: /run/nginx.pid
  isolation_allow:
    description: Names of containers allowed to mount the tenants' folders or publish their ports - a monitoring agent that
      mounts C(/), a backup tool - so the isolation check does not report them. The tenants' own containers are judged
      in full whatever this says.
    type: list
    elements: str
    default: []
  tls_min_days:
    description: "Days a tenant's certificate (C(tls_cert)) must stay valid: the drift check reports one that expires sooner, or
      that cannot be read. Renewing it is not this collection's job, so nothing is changed."
    type: int
    default: 14
  state_dir:
    description: Where the host keeps its deploy lock (C(deploy.lock)) and the journal of a run in progress.
    type: path
    default: /var/lib/pinned-release
  audit_log:
    description: The host's audit log, one JSON line per tenant change, recovery and lock takeover.
    type: path
    default: /var/log/pinned-release/audit.jsonl
  reason:
    description: Why this deploy happens; recorded in the lock and the audit log.
    type: str
    default: deploy
  operator:
    description: Who deploys; recorded in the lock and the audit log.
    type: str
    default: unknown
  break_lock:
    description: Take over a deploy lock left by a run that is no longer running on the host - the run id its refusal names, or
      C(stale) for a lock older than O(lock_max_age). A lock whose run is still running is never taken; when it names
      that run, the call waits for it to finish first. Recorded in the audit log.
    type: str
    default: ""
  lock_max_age:
    description: Seconds after which O(break_lock=stale) may take over a dead run's lock.
    type: int
    default: 21600
  lock_wait:
    description: Seconds to wait for the run named by O(break_lock) to finish when it is still running.
    type: int
    default: 600
  log_lines:
    description: Last log lines returned for a container that failed (lines with a secret value are dropped).
    type: int
    default: 20
  # END settings
  run_id:
    description: This run's id (the action plugin sets one per controller run, shared by every host).
    type: str
  controller:
    description: The controller running this (host, pid, process start, command); set by the action plugin.
    type: dict
    default: {}
  host_name:
    description: This host's name in messages (the action plugin sets the inventory name).
    type: str
notes:
  - The transaction keeps going when the controller disappears (the connection drops); a re-run waits for it.
  - Progress of a long run shows on the host in the audit log and C(<state_dir>/journal/).
"""

EXAMPLES = r"""
- name: Bring this host's tenants to the pin
  pinned.release.tenant_rollout:
    image: "{{ release_pin.image }}"
    tenants: "{{ release_tenants }}"
    app: "{{ lookup('pinned.release.app_profile', 'open-webui', overrides=release_app | default({})).runtime }}"
    reason: rollout of the pin
    operator: "{{ lookup('ansible.builtin.env', 'USER') }}"
    smoke_checks:
      - name: health through nginx
        path: /health
        json: {status: true}
  register: rollout

- name: What a drift check sees (nothing changes)
  pinned.release.tenant_rollout:
    image: "{{ release_pin.image }}"
    tenants: "{{ release_tenants }}"
    app: "{{ app_profile }}"
  check_mode: true
  register: drift
"""

RETURN = r"""
tenants:
  description: One entry per declared tenant.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Tenant name.
      type: str
      returned: always
    outcome:
      description:
        - C(unchanged), C(created), C(replaced), C(put_back) (failed, then put back; see RV(tenants[].standing)),
          C(not_attempted) (a batch before it failed), C(failed) (its container could not even be looked at; nothing
          was done to it). In check mode, RV(tenants[].action) instead.
      type: str
      returned: when not in check mode
    action:
      description: In check mode, C(none), C(create), C(replace) or C(restore) (named in O(restore_snapshots)).
      type: str
      returned: in check mode
    drift:
      description: In check mode, what differs (C(field), C(expected), C(actual)); secret values masked.
      type: list
      elements: dict
      returned: in check mode
    image:
      description: The image the tenant is to run.
      type: str
      returned: always
    declared:
      description:
        - What the tenant's container is declared with - C(folder) (the tenant's folder - data, snapshots, env files),
          C(mounts), C(published_ports), C(stop_timeout). P(pinned.release.run_checklist#module)'s container checks
          judge the container against it. Null for a tenant finished from its journal that is no longer declared.
      type: dict
      returned: when not in check mode
    previous_image:
      description: The exact image reference that ran before (whatever its repository).
      type: str
      returned: when a container existed
    snapshot:
      description: The data snapshot taken before the change.
      type: str
      returned: when replaced or put back
    timings:
      description:
        - Seconds - C(total_s), C(unavailable_s) (old stopped to new ready), C(start_to_ready_s), and each step's own
          (C(create_s), C(stop_s), C(snapshot_s), C(restore_s), C(swap_s), C(start_s), C(site_s), C(checks_s),
          C(commit_s)), so a slow deploy says where its seconds go.
      type: dict
      returned: when replaced or put back
    standing:
      description: After a put-back, where the tenant stands - previous image healthy, running but not ready, or DOWN with the command to fix it.
      type: str
      returned: when put back
    failure:
      description: Why the tenant failed.
      type: str
      returned: when put back
    lost_writes:
      description: After a restore, files written since the restored snapshot (kept in the set-aside folder).
      type: list
      elements: str
      returned: when data was restored
    writes_set_aside:
      description:
        - After a put-back of a version that ran, where the data it ran on is kept (C(aside)), since when
          (C(since)), how many files changed since (C(count)) and the first of them (C(files)).
      type: dict
      returned: when a started version was put back
recovered:
  description:
    - What a run that died had left in the journal, and what was done about it - C(tenant), C(run_id), C(step) (where
      it died), C(outcome), and C(writes_set_aside) when the put-back set aside data users may have written.
  returned: always
  type: list
  elements: dict
lock:
  description: The lock holder when the lock could not be taken (C(holder), C(live), C(down) tenants).
  returned: when the host is locked
  type: dict
lock_taken_over:
  description: The dead run whose lock this run took over.
  returned: when a lock was taken over
  type: dict
nginx_changed:
  description: nginx files written or removed.
  returned: always
  type: list
  elements: str
removed_undeclared:
  description: Managed containers removed because no tenant declares them.
  returned: always
  type: list
  elements: str
image_versions:
  description: "C({image: version}) - the version each image declares in O(app)'s C(version_label), when it does."
  returned: when not in check mode
  type: dict
status:
  description:
    - Where each declared tenant stands once the run is over (for the fleet page) - C(name), C(container), C(domain),
      C(image), C(digest), C(version) (what the container's image declares in O(app)'s C(version_label), null when it
      declares none that reads as a version), C(status) (C(absent) when there is no container), C(health),
      C(started_at), C(finished_at), C(snapshots) (C(count), C(newest_at), C(oldest_at)) and C(last_change) (the
      newest audit record of the tenant - C(time), C(operator), C(reason), C(result), C(from), C(to); null when the
      audit log has none).
  returned: success
  type: list
  elements: dict
unexpected:
  description: In check mode, managed containers no tenant declares.
  returned: in check mode
  type: list
  elements: dict
shared:
  description:
    - "In check mode, C({tenant: [what]}) of other containers that mount the tenant's folder (or a folder holding it,
      or one inside it) or publish its port - a break of isolation no deploy can mend, so it is reported, not changed."
  returned: in check mode
  type: dict
certificates:
  description:
    - "In check mode, C({tenant: what}) of tenants whose certificate (C(tls_cert)) cannot be read or stays valid for
      fewer than O(tls_min_days) days - reported, not changed (renewing it is not this collection's job)."
  returned: in check mode
  type: dict
"""

import os
import signal
import socket
import time

from ansible_collections.pinned.release.plugins.module_utils._docker import (
    DOCKER_ARGUMENT_SPEC,
    DockerException,
    EngineError,
    connect,
)
from ansible_collections.pinned.release.plugins.module_utils._engine import DockerEngine, EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._journal import (
    HostLock,
    JournalError,
    LockBusy,
    append_line,
    lock_age_seconds,
    peek_lock,
)
from ansible_collections.pinned.release.plugins.module_utils._module import PinnedModule
from ansible_collections.pinned.release.plugins.module_utils._nginx import Nginx
from ansible_collections.pinned.release.plugins.module_utils._rollout import Rollout, RolloutError
from ansible_collections.pinned.release.plugins.module_utils._rollout_model import transaction_settings
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import MoveJournal
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask, finish
from ansible_collections.pinned.release.plugins.module_utils._settings import SETTINGS
from ansible_collections.pinned.release.plugins.module_utils._settings import argument_spec as settings_argument_spec
from ansible_collections.pinned.release.plugins.module_utils._snapshots import iso
from ansible_collections.pinned.release.plugins.module_utils._tenants import (
    TENANT_ARGUMENT_SPEC,
    checked_specs,
    settings_problems,
)

FAILPOINT_ENV = "PINNED_RELEASE_FAILPOINT"


class ModuleFailure(Exception):
    """The call cannot go on; ``result`` holds what to return with the message."""

    def __init__(self, msg: str, **result) -> None:
        super().__init__(msg)
        self.result = result


def failpoint_from(environ: dict):
    """A test hook: PINNED_RELEASE_FAILPOINT=<label>[:<tenant>][@before] kills this process right after (or before)
    that journal write (labels: the steps of docs/recovery.md, and points inside them such as restore.aside)."""
    wanted = environ.get(FAILPOINT_ENV)
    if not wanted:
        return None
    wanted, _at, phase = wanted.partition("@")
    label, _sep, tenant = wanted.partition(":")

    def crash(at: str, name: str, when: str) -> None:
        if at == label and when == (phase or "after") and (not tenant or tenant == name):
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def _holder_text(holder: dict) -> str:
    controller = holder.get("controller") or {}
    where = f", from {controller.get('host')} pid {controller.get('pid')}" if controller.get("host") else ""
    return (f"{holder.get('operator', '?')} since {holder.get('started_at', '?')} "
            f"({holder.get('reason', '')}, run {holder.get('run_id', '?')}{where})")  # fmt: skip


def lock_refusal(host: str, busy: LockBusy, journal: MoveJournal, down: list) -> str:
    holder = busy.holder
    if busy.live:
        return (f"{host} is locked by another deploy: {_holder_text(holder)}; its transaction is still running on "
                f"this host (pid {holder.get('pid', '?')}). Wait for it to finish, then re-run.")  # fmt: skip
    try:
        where = "; ".join(f"{t} (step {r.step})" for t, r in journal.pending().items()) or "between tenants"
    except JournalError as exc:
        where = f"a step its journal does not say ({exc})"
    downs = f" Tenants down now: {', '.join(down)}." if down else " No tenant is down."
    return (f"{host} is locked by a deploy that is no longer running: {_holder_text(holder)}, interrupted at {where}."
            f"{downs} If that run is dead, re-run with -e tenant_break_lock={holder.get('run_id', '?')} (or "
            "break_lock for the module): the re-run recovers from the journal first (docs/recovery.md).")  # fmt: skip


def down_tenants(engine, specs: list) -> list:
    down = []
    for spec in specs:
        try:
            facts = engine.container(spec["container"])
        except EngineCallError as exc:
            down.append(f"{spec['name']} (unknown: {exc})")
            continue
        if facts is None or facts["status"] != "running":
            down.append(f"{spec['name']} ({'no container' if facts is None else facts['status']})")
    return down


def run_module(params: dict, engine, check_mode: bool, environ: dict, mask: SecretMask) -> dict:
    host = params["host_name"] or socket.gethostname()
    specs = checked_specs(params["tenants"], params["app"], params["image"])
    values = {s.key: params[s.group][s.option] if s.group else params[s.option] for s in SETTINGS}
    problems = settings_problems(values, as_role=False)
    if problems:
        raise ModuleFailure("; ".join(problems))
    settings = transaction_settings(values, params["app"])
    state_dir = params["state_dir"]
    journal = MoveJournal(state_dir)
    nginx_params = params["nginx"]
    nginx = Nginx(nginx_params["site_dir"], nginx_params["test_command"], nginx_params["reload_command"],
                  nginx_params["pid_file"]) if nginx_params["enabled"] else None  # fmt: skip
    audit_log = params["audit_log"]
    run = {"run_id": params["run_id"] or f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}",
           "operator": params["operator"], "reason": params["reason"], "host": host}  # fmt: skip

    def audit(record: dict) -> None:
        append_line(audit_log, dict(mask.apply(record), time=iso(), host=host))

    rollout = Rollout(engine, specs, params["app"], settings, run, journal, nginx, audit=audit,
                      failpoint=failpoint_from(environ), mask=mask)  # fmt: skip
    if check_mode:
        plan = rollout.plan()
        holder, live = peek_lock(os.path.join(state_dir, "deploy.lock"))
        changed = bool(plan["sites_to_change"] or plan["sites_to_remove"] or plan["pending_journal"]
                       or any(t["action"] != "none" or t["files_changed"] for t in plan["tenants"]))  # fmt: skip
        result = {"changed": changed, "tenants": plan["tenants"], "unexpected": plan["unexpected"], "shared": plan["shared"],
                  "certificates": plan["certificates"],
                  "sites_to_change": plan["sites_to_change"], "sites_to_remove": plan["sites_to_remove"],
                  "pending_journal": plan["pending_journal"], "diff": plan["diff"], "recovered": [],
                  "nginx_changed": [], "removed_undeclared": [],
                  "status": rollout.status(audit_log)}  # fmt: skip
        if holder:
            result["lock"] = {"holder": holder, "live": live}
        return result

    lock = HostLock(os.path.join(state_dir, "deploy.lock"))
    now = time.time()
    holder = {"run_id": run["run_id"], "operator": run["operator"], "reason": run["reason"], "image": params["image"],
              "started_at": iso(now), "started_epoch": now, "pid": os.getpid(), "host": host,
              "controller": params["controller"] or {}}  # fmt: skip
    breaking = params["break_lock"]

    def may_take_over(dead: dict) -> bool:
        if breaking and breaking == dead.get("run_id"):
            return True
        age = lock_age_seconds(dead, time.time())
        return breaking == "stale" and age is not None and age > params["lock_max_age"]

    def taken_over(dead: dict) -> None:  # written before the lock names this run: a kill in between leaves both
        audit({"tenant": None, "result": f"lock taken over from run {dead.get('run_id')}", "previous_holder": dead,
               "why": "break_lock=stale (older than lock_max_age)" if breaking == "stale" else f"break_lock={breaking}"})  # fmt: skip

    try:
        dead = lock.acquire(holder, may_take_over, wait_for_run=breaking or None, wait_seconds=params["lock_wait"],
                            on_take_over=taken_over)  # fmt: skip
    except LockBusy as busy:
        down = down_tenants(engine, specs)
        raise ModuleFailure(lock_refusal(host, busy, journal, down),
                            lock={"holder": busy.holder, "live": busy.live, "down": down}) from None  # fmt: skip
    # The transaction finishes (or puts back) even when the controller's connection drops.
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        try:
            result = rollout.execute()
        except RolloutError as exc:
            raise ModuleFailure(f"{host}: {exc}") from None
        if dead:
            result["lock_taken_over"] = dead
        result["status"] = rollout.status(audit_log)
        return result
    finally:
        lock.release()
        signal.signal(signal.SIGHUP, previous_hup)


def main() -> None:
    module = PinnedModule(
        argument_spec={
            "image": {"type": "str", "required": True},
            "tenants": {"type": "list", "elements": "dict", "required": True, "options": TENANT_ARGUMENT_SPEC},
            "app": {"type": "dict", "required": True},
            **settings_argument_spec(),
            "run_id": {"type": "str"},
            "controller": {"type": "dict", "default": {}},
            "host_name": {"type": "str"},
            **DOCKER_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    mask = SecretMask(v for t in module.params["tenants"] for v in (t.get("secrets") or {}).values())
    try:
        engine = DockerEngine(connect(module.params))
        result = run_module(module.params, engine, module.check_mode, dict(os.environ), mask)
    except ModuleFailure as exc:
        module.fail_json(**finish(module, dict(exc.result, msg=str(exc)), mask))
    except (ValueError, RolloutError, EngineError, JournalError) as exc:
        module.fail_json(**finish(module, {"msg": str(exc)}, mask))
    except (DockerException, OSError) as exc:
        module.fail_json(**finish(module, {"msg": f"{type(exc).__name__}: {exc}"}, mask))
    except Exception as exc:  # never a traceback: one line that names what failed
        module.fail_json(**finish(module, {"msg": f"tenant_rollout failed unexpectedly ({type(exc).__name__}: "
                                                  f"{' '.join(str(exc).split())[:300]}); its journal is on the host: "
                                                  "re-run to recover (docs/recovery.md)"}, mask))  # fmt: skip
    for warning in result.pop("warnings", []):
        module.warn(mask.text(warning))
    module.exit_masked(result, mask)


if __name__ == "__main__":
    main()
