# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release transaction's settings, each declared once: its type, default, limits and description.

``tenant_rollout``'s argument spec is built from this table at run time; its DOCUMENTATION, the ``tenant`` role's
defaults, argument specs and the module call in its tasks are generated from it (``tools/settings_table.py``, run by
``make docs``; a unit test fails when one of them disagrees), and ``docs/inventory-reference.md`` from those specs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

ROLE_PREFIX = "tenant_"
NGINX = "nginx"  # the module's dict option that holds the nginx settings


@dataclass(frozen=True)
class Setting:
    option: str  # the module's option (a sub-option of ``nginx`` when ``group`` says so)
    type: str  # Ansible's type name: int, bool, str, path, list, dict
    default: Any  # the module's default, and the role's unless ``role_default`` is set
    doc: tuple  # the description, one string per paragraph, in Ansible's markup (C(), O())
    role: Optional[str] = None  # the role's variable is tenant_<role>; None: a module option the role leaves alone
    role_default: Any = None  # the role's default when it differs: read from inventory or the app profile (Jinja)
    role_doc: tuple = ()  # what the role's description adds (where its default comes from)
    elements: Optional[str] = None
    choices: tuple = ()
    minimum: Optional[int] = None
    minimum_why: str = ""
    group: Optional[str] = None
    no_log: Optional[bool] = None

    @property
    def role_variable(self) -> Optional[str]:
        return ROLE_PREFIX + self.role if self.role else None

    @property
    def role_value(self) -> Any:
        return self.default if self.role_default is None else self.role_default

    @property
    def key(self) -> str:
        """The name a settings dict uses: the option, ``nginx.<option>`` for a sub-option."""
        return f"{self.group}.{self.option}" if self.group else self.option


SETTINGS: tuple = (
    Setting("batch_size", "int", 1, role="batch", minimum=1,
            doc=("Tenants replaced together on a host; the health gate waits for the whole batch, a failure puts it "
                 "all back.",)),
    Setting("health_timeout", "int", 120, role="health_timeout", minimum=1,
            role_default="{{ _tenant_app.start_timeout | default(120) }}",
            role_doc=("Defaults to the app's C(start_timeout).",),
            doc=("Seconds a new container has to become ready before it is put back (a crash loop or an unhealthy "
                 "healthcheck fails at once).",)),
    Setting("snapshot_keep", "int", 5, role="snapshot_keep", minimum=2,
            minimum_why=" (with 1, the snapshot a rollback needs is rotated away)",
            doc=("Data snapshots kept per tenant, at least 2; the pre-upgrade snapshot of each digest in "
                 "O(protect_digests) is kept too.",)),
    Setting("protect_digests", "list", [], role="protect_digests", elements="str",
            role_default="{{ [release_pin.digest | default('')] + (release_pin_history | default([]) "
                         "| map(attribute='digest') | list)[:1] }}",
            role_doc=("Defaults to the current pin and the one before it (the rollback target).",),
            doc=("Digests whose pre-upgrade snapshots rotation never deletes.",)),
    Setting("aside_keep", "int", 2, role="aside_keep", minimum=0,
            doc=("Set-aside data folders (C(data.failed-*), C(data.replaced-*)) kept per tenant. Older ones are "
                 "deleted only when a snapshot holds the same bytes; the others (the only copy of some writes) are "
                 "reported as a warning, never deleted.",)),
    Setting("restore_data_on_failure", "bool", True, role="restore_data_on_failure",
            doc=("When a new version that ran fails, put the data snapshot back (the data the failed version ran on "
                 "is kept aside).",)),
    Setting("data_mode", "str", "current", role="data_mode", choices=("current", "auto", "restore"),
            doc=("C(current) runs the target on the data as it is. C(auto) (used by the C(rollback) role) restores "
                 "the data from the snapshot taken when the tenant last left the target - first when the tenant "
                 "still runs the version that snapshot was taken for (an emergency rollback across a migration), "
                 "otherwise only when the target fails on the current data. C(restore) restores it first.",)),
    Setting("restore_snapshots", "dict", {}, role="restore_snapshots",
            doc=("C({tenant name: snapshot path}) - start these tenants from that snapshot instead of their current "
                 "data (the data replaced is kept aside as C(data.replaced-<time>)).",)),
    Setting("smoke_checks", "list", [], role="smoke_checks", elements="dict",
            role_default="{{ [{'name': 'health through nginx', 'path': _tenant_app.health_path, "
                         "'json': _tenant_app.health_json or none}] }}",
            role_doc=("Defaults to one check, the app's health path through nginx answering 200 (with its health "
                      "JSON, when the app profile sets C(health_json)).",),
            doc=("Checks through nginx once a tenant is ready, in the C(release_checklist) format - C(name), "
                 "C(path), C(status) (default 200), C(json) (subset of the JSON body), C(json_keys), C(contains), "
                 "C(content_type).",)),
    Setting("remove_undeclared", "bool", False, role="remove_undeclared",
            doc=("Remove managed containers no tenant of this host declares (their data stays); otherwise they are "
                 "reported.",)),
    Setting("failure_scope", "str", "batch", role="failure_scope", choices=("batch", "tenant"),
            doc=("C(batch) (a rollout) - a tenant that fails puts its whole batch back and the tenants after it are "
                 "not attempted. C(tenant) (used by the C(rollback) role) - only the failing tenant is put back; the "
                 "others go on, so one tenant never takes the others back to the version rolled away from.",)),
    Setting("isolation_allow", "list", [], role="isolation_allow", elements="str",
            doc=("Names of containers allowed to mount the tenants' folders or publish their ports - a monitoring "
                 "agent that mounts C(/), a backup tool - so the isolation check does not report them. The tenants' "
                 "own containers are judged in full whatever this says.",)),
    Setting("tls_min_days", "int", 14, role="tls_min_days", minimum=0,
            doc=("Days a tenant's certificate (C(tls_cert)) must stay valid: the drift check reports one that expires "
                 "sooner, or that cannot be read. Renewing it is not this collection's job, so nothing is changed.",)),
    Setting("enabled", "bool", True, role="nginx_enabled", group=NGINX,
            doc=("Manage one nginx site per tenant, a shared websocket map and a default server.",)),
    Setting("site_dir", "path", "/etc/nginx/conf.d", role="nginx_site_dir", group=NGINX,
            doc=("Where the sites go; nginx must include C(*.conf) from there.",)),
    Setting("http_port", "int", 80, role="nginx_http_port", group=NGINX, minimum=1,
            doc=("Port nginx listens on for plain HTTP.",)),
    Setting("https_port", "int", 443, role="nginx_https_port", group=NGINX, minimum=1,
            doc=("Port nginx listens on for HTTPS (tenants with C(tls_cert)).",)),
    Setting("default_server", "bool", True, role="nginx_default_server", group=NGINX,
            doc=("Answer requests for a name no tenant serves (Host or SNI) with nothing, not with the first "
                 "tenant's site.",)),
    Setting("access_log_dir", "str", "", role="nginx_access_log_dir", group=NGINX,
            doc=("Folder of each tenant's own access log (C(pinned-release-<tenant>.access.log), e.g. "
                 "C(/var/log/nginx)), which the post-release watch reads for 5xx answers. Empty (the default) - the "
                 "sites log where nginx's own setting says and the watch counts no 5xx. Set, a site logs only there: "
                 "nginx's main access log no longer gets that site's requests.",)),
    Setting("test_command", "list", ["nginx", "-t"], role="nginx_test_command", group=NGINX, elements="str",
            doc=("Command that validates nginx's configuration.",)),
    Setting("reload_command", "list", ["nginx", "-s", "reload"], role="nginx_reload_command", group=NGINX,
            elements="str", doc=("Command that reloads nginx once its configuration validated.",)),
    Setting("pid_file", "path", "/run/nginx.pid", group=NGINX,
            doc=("nginx's pid file, to wait for the reload's new workers.",)),
    Setting("state_dir", "path", "/var/lib/pinned-release", role="state_dir",
            doc=("Where the host keeps its deploy lock (C(deploy.lock)) and the journal of a run in progress.",)),
    Setting("audit_log", "path", "/var/log/pinned-release/audit.jsonl", role="audit_log",
            doc=("The host's audit log, one JSON line per tenant change, recovery and lock takeover.",)),
    Setting("reason", "str", "deploy", role="reason", role_default="{{ release_reason | default('deploy') }}",
            doc=("Why this deploy happens; recorded in the lock and the audit log.",)),
    Setting("operator", "str", "unknown", role="operator",
            role_default="{{ lookup('pinned.release.operator') }}",
            role_doc=("Defaults to C(PINNED_OPERATOR), else C(USER), on the controller.",),
            doc=("Who deploys; recorded in the lock and the audit log.",)),
    Setting("break_lock", "str", "", role="break_lock", no_log=False,
            doc=("Take over a deploy lock left by a run that is no longer running on the host - the run id its "
                 "refusal names, or C(stale) for a lock older than O(lock_max_age). A lock whose run is still "
                 "running is never taken; when it names that run, the call waits for it to finish first. Recorded "
                 "in the audit log.",)),
    Setting("lock_max_age", "int", 21600, role="lock_max_age", minimum=0,
            doc=("Seconds after which O(break_lock=stale) may take over a dead run's lock.",)),
    Setting("lock_wait", "int", 600, minimum=0,
            doc=("Seconds to wait for the run named by O(break_lock) to finish when it is still running.",)),
    Setting("log_lines", "int", 20, minimum=0,
            doc=("Last log lines returned for a container that failed (lines with a secret value are dropped).",)),
)  # fmt: skip

BY_KEY = {setting.key: setting for setting in SETTINGS}


def default(key: str) -> Any:
    """A setting's default (the module's), for the transaction's own Settings."""
    value = BY_KEY[key].default
    return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


def type_fields(setting: Setting) -> dict:
    """``type``, and ``elements`` and ``choices`` where declared: as an argument spec and the docs spell them."""
    fields: dict = {"type": setting.type}
    if setting.elements:
        fields["elements"] = setting.elements
    if setting.choices:
        fields["choices"] = list(setting.choices)
    return fields


def _spec(setting: Setting) -> dict:
    spec = {**type_fields(setting), "default": default(setting.key)}
    if setting.no_log is not None:
        spec["no_log"] = setting.no_log
    return spec


def argument_spec() -> dict:
    """The settings' part of tenant_rollout's argument spec (the nginx settings as one dict option)."""
    spec = {s.option: _spec(s) for s in SETTINGS if not s.group}
    spec[NGINX] = {"type": "dict", "default": {}, "options": {s.option: _spec(s) for s in SETTINGS if s.group == NGINX}}
    return spec


def number_problem(setting: Setting, value: Any, name: str) -> Optional[str]:
    """A whole number of at least the setting's minimum: an int, its text (a template renders text) or a float with no
    fraction (YAML's ``21600.0``), as Ansible's ``int`` takes them; never a boolean."""
    try:
        number = float(str(value))
        if isinstance(value, bool) or not number.is_integer() or number < (setting.minimum or 0):
            raise ValueError
    except (ValueError, OverflowError):
        return f"{name} must be a number of at least {setting.minimum or 0}{setting.minimum_why}, got {value!r}"
    return None


def display_name(key: str, as_role: bool) -> str:
    """What the operator calls a setting: the role's variable, or the module's option."""
    setting = BY_KEY[key]
    return (setting.role_variable if as_role and setting.role else None) or setting.key


def limit_problems(settings: dict, as_role: bool) -> list:
    """One line per setting in ``settings`` (keyed as ``Setting.key``) that breaks its declared minimum or choices."""
    problems = []
    for key, value in settings.items():
        setting = BY_KEY.get(key)
        if setting is None or value is None:
            continue
        name = display_name(key, as_role)
        problem = number_problem(setting, value, name) if setting.minimum is not None else None
        if problem:
            problems.append(problem)
        if setting.choices and value not in setting.choices:
            *first, last = setting.choices
            problems.append(f"{name} must be {', '.join(first)} or {last}, got {value!r}")
    return problems


def _typed_value(setting: Setting, value: Any, name: str) -> tuple:
    """(value as the setting's type, problem or None): a template renders numbers and booleans as text."""
    if setting.type == "int":
        problem = number_problem(setting, value, name)
        return (None, problem) if problem else (int(float(str(value))), None)
    if setting.type == "bool":
        text = str(value).lower()
        if isinstance(value, bool) or text in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return (value if isinstance(value, bool) else text in ("true", "yes", "1", "on")), None
        return None, f"{name} must be true or false, got {value!r}"
    if setting.type in ("list", "dict"):
        wanted = list if setting.type == "list" else dict
        if not isinstance(value, wanted):
            return None, f"{name} must be a {setting.type}, got {type(value).__name__}"
        return value, None
    return ("" if value is None else str(value)), None


def typed_values(raw: object, where: str = "settings") -> tuple:
    """({key: typed value} of every setting, absent ones at their default; [problem]) from settings keyed as
    ``Setting.key`` and rendered by templates (the tenant role's ``_tenant_settings``)."""
    if not isinstance(raw, dict):
        return {}, [f"{where} must be a mapping of the transaction's settings, got {type(raw).__name__}"]
    unknown = sorted(set(raw) - set(BY_KEY))
    problems = (
        [f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(BY_KEY))}"] if unknown else []
    )
    values = {}
    for key, setting in BY_KEY.items():
        if raw.get(key) is None:
            values[key] = default(key)
            continue
        values[key], problem = _typed_value(setting, raw[key], f"{where}.{key}")
        if problem:
            problems.append(problem)
    return values, problems
