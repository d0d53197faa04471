# SPDX-License-Identifier: GPL-3.0-or-later
"""Every module turns bad input into one line naming the thing at fault, and changes nothing: each row is the module's
own main() run in this process (argument spec, checks, the engine a fake), as Ansible runs it on a host. The lab runs a
few of these rows over real SSH against a real engine (tests/integration/test_bad_input.py)."""

from __future__ import annotations

import pytest
import yaml

from ..module_utils.fake_host import ROOT, V1, Clock, FakeEngine
from .module_runner import run_module

APP = yaml.safe_load((ROOT / "profiles/open-webui.yml").read_text())["runtime"] | {
    "scheme": "http",
    "data_root": "/nonexistent/bad-input",
    "container_prefix": "badinput-",
}
TENANT = {"name": "alpha", "domain": "alpha.bad.lab", "port": 3990, "secrets": {"WEBUI_SECRET_KEY": "k" * 32}}
REPO = V1.split("@")[0]
ISSUER = "https://token.actions.githubusercontent.com"


def rollout(**changes) -> dict:
    args = {"image": V1, "tenants": [TENANT], "app": APP, "state_dir": "/nonexistent/state",
            "audit_log": "/nonexistent/audit.log", "nginx": {"enabled": False}}  # fmt: skip
    args.update(changes)
    return args


def watch(**changes) -> dict:
    args = {"tenants": [TENANT], "containers": [{"name": "alpha", "container": "badinput-alpha"}], "minutes": 1}
    args.update(changes)
    return args


HOST_ROWS = [
    ("tenant_rollout", rollout(tenants=[TENANT | {"port": 70000}]), "port"),
    ("tenant_rollout", rollout(tenants=["alpha"]), "tenants[0]"),
    ("tenant_rollout", rollout(tenants=[TENANT | {"port": [3990]}]), "port"),
    ("tenant_rollout", rollout(tenants=[TENANT | {"domain": {"a": 1}}]), "domain"),
    ("tenant_rollout", rollout(tenants=[TENANT | {"name": ["alpha"]}]), "name"),
    ("tenant_rollout", rollout(tenants=[TENANT | {"env": ["A=1"]}]), "env"),
    ("tenant_rollout", rollout(tenants=[{k: v for k, v in TENANT.items() if k != "secrets"}]), "WEBUI_SECRET_KEY"),
    ("tenant_rollout", rollout(tenants=[TENANT, TENANT]), "alpha"),
    ("tenant_rollout", rollout(tenants=[TENANT | {"name": "common"}]), "reserved"),
    ("tenant_rollout", rollout(image=f"{REPO}:v1"), "not pinned"),
    ("tenant_rollout", rollout(image="a" * 64), "image ID"),
    ("tenant_rollout", rollout(image=f"{REPO}:v1\n@{V1.split('@')[1]}"), "white space"),
    ("tenant_rollout", rollout(app="openwebui"), "app"),
    ("tenant_rollout", rollout(app={k: v for k, v in APP.items() if k != "data_path"}), "data_path"),
    ("tenant_rollout", rollout(batch_size=0), "batch"),
    ("tenant_rollout", rollout(snapshot_keep=1), "snapshot_keep"),
    ("tenant_rollout", rollout(data_mode="newest"), "data_mode"),
    ("tenant_rollout", rollout(failure_scope="host"), "failure_scope"),
    ("tenant_rollout", rollout(nginx="on"), "nginx"),
    ("tenant_rollout", rollout(smoke_checks=[{"name": "x", "path": "/", "json": [1]}]), "json"),
    ("tenant_rollout", rollout(smoke_checks=[{"name": "x", "path": "/", "timeout": "10s"}]), "timeout"),
    ("tenant_rollout", rollout(break_lock="true"), "break_lock"),
    ("verify_container", {"containers": [{"name": "bad-input-absent", "image": V1}], "wait_timeout": 2},
     "bad-input-absent: container does not exist"),
    ("verify_container", {"containers": [{"image": V1}]}, "name"),
    ("verify_container", {"containers": ["x"]}, "containers"),
    ("verify_container", {"containers": [{"name": "x", "image": "x:latest"}]}, "not pinned"),
    ("verify_container", {"containers": [{"name": "x", "image": V1, "env": ["A=1"]}]}, "env"),
    ("verify_container", {"selector": {"label": 5}}, "selector"),
    ("run_checklist", {"tenants": [], "checks": [{"name": "h", "path": "/health"}]}, "tenants"),
    ("run_checklist", {"tenants": [TENANT], "checks": []}, "checks"),
    ("run_checklist", {"tenants": [TENANT], "checks": [{"name": "h", "path": "/", "json": [1]}]}, "json"),
    ("run_checklist", {"tenants": [TENANT], "checks": [{"name": "h", "path": "/", "status": "ok"}]}, "status"),
    ("run_checklist", {"tenants": [TENANT], "checks": ["health"]}, "'checks'"),
    ("run_checklist", {"tenants": [TENANT], "checks": [{"name": "h", "path": "/", "enabled": False}]},
     "no enabled check"),
    ("run_checklist", {"tenants": [{"domain": "x"}], "checks": [{"name": "h", "path": "/"}]}, "name"),
    ("run_checklist", {"tenants": [TENANT], "checks": [{"name": "c", "certificate": {"days": 3}}]}, "certificate"),
    ("watch_tenants", watch(minutes=0), "minutes must be more than 0"),
    ("watch_tenants", watch(minutes=2000), "at most 1440"),
    ("watch_tenants", watch(interval=0), "interval must be 1 to 600"),
    ("watch_tenants", watch(error_patterns=["(unclosed"]), "error_patterns[0] '(unclosed' is not a regular expression"),
    ("watch_tenants", watch(max_restarts=-1), "max_restarts must be 0 or more"),
    ("watch_tenants", watch(access_log_dir="logs"), "access_log_dir 'logs' must be an absolute path"),
    ("watch_tenants", watch(containers=[{"name": "alpha"}]), "containers[0] must have a tenant name and a container"),
    ("watch_tenants", watch(containers=[{"name": "beta", "container": "badinput-beta"}]), "tenant 'beta' is not among"),
    ("watch_tenants", watch(minutes="soon"), "minutes"),
    ("adopt_facts", {"repository": REPO, "names": ["bad-input-absent"]},
     "no container named bad-input-absent on this host: check names (docker ps -a)"),
    ("adopt_facts", {"repository": REPO, "container_port": "eighty"}, "container_port"),
]  # fmt: skip


@pytest.mark.parametrize(("module", "args", "fragment"), HOST_ROWS,
                         ids=[f"{m}-{i}" for i, (m, _a, _f) in enumerate(HOST_ROWS)])  # fmt: skip
def test_host_modules_refuse_bad_input_in_one_line(monkeypatch, module, args, fragment):
    engine = FakeEngine(Clock())
    result, output = run_module(module, args, monkeypatch, engine=engine)
    assert result.get("failed") is True, result
    message = result.get("msg", "")
    assert "\n" not in message.strip(), message
    assert fragment in message, message
    assert "Traceback (most recent call last)" not in output
    assert not [call for call in engine.calls if call[0] not in ("inspect", "listing")], "a bad input changed the host"


CONTROLLER_ROWS = [
    ("pin_digest", {"image": "repo:tag"}, "not pinned"),
    ("pin_digest", {"image": "a" * 64}, "image ID"),
    ("pin_digest", {"reason": ""}, "reason is required"),
    ("pin_digest", {"kind": "hotfix"}, "kind"),
    ("pin_digest", {"require_evidence": True, "evidence": "@tmp/absent.json"}, "evidence"),
    ("pin_digest", {"targets": ["@tmp/absent.sh"], "require_evidence": False, "verify_registry": False}, "absent.sh"),
    ("resolve_digest", {"image": "ghcr.io/Acme/app:v1"}, "lowercase"),
    ("resolve_digest", {"images": []}, "images"),
    ("resolve_digest", {"image": f"{REPO}:v1", "platform": "amd64"}, "platform"),
    ("resolve_digest", {"image": f"{REPO}:v1", "verify_signature": "yes"}, "verify_signature"),
    ("resolve_digest", {"image": f"{REPO}:v1", "verify_signature": {"identities": []}}, "identities is empty"),
    (
        "resolve_digest",
        {"image": f"{REPO}:v1", "verify_signature": {"identities": ["ci"]}},
        "identities[0] must be a mapping",
    ),
    (
        "resolve_digest",
        {"image": f"{REPO}:v1", "verify_signature": {"identities": [{"issuer": ISSUER}]}},
        "exactly one of subject",
    ),
    (
        "resolve_digest",
        {"image": f"{REPO}:v1", "verify_signature": {"identities": [{"issuer": ISSUER, "subject_regexp": "(ci"}]}},
        "is not a regular expression",
    ),
    (
        "resolve_digest",
        {
            "image": f"{REPO}:v1",
            "verify_signature": {
                "identities": [{"issuer": ISSUER, "subject": "ci"}],
                "trusted_root": "/nonexistent/trusted_root.json",
            },
        },
        "trusted root file",
    ),
]


@pytest.mark.parametrize(("module", "changes", "fragment"), CONTROLLER_ROWS,
                         ids=[f"{m}-{i}" for i, (m, _a, _f) in enumerate(CONTROLLER_ROWS)])  # fmt: skip
def test_controller_modules_refuse_bad_input_in_one_line(monkeypatch, tmp_path, module, changes, fragment):
    changes = {k: [str(v).replace("@tmp", str(tmp_path)) for v in value] if isinstance(value, list)
               else str(value).replace("@tmp", str(tmp_path)) if isinstance(value, str) else value
               for k, value in changes.items()}  # fmt: skip
    args = (
        {"path": str(tmp_path / "pin.yml"), "image": V1, "reason": "bad input test"} if module == "pin_digest" else {}
    )
    result, output = run_module(module, {**args, **changes}, monkeypatch)
    assert result.get("failed") is True, result
    message = result.get("msg", "")
    assert "\n" not in message.strip(), message
    assert fragment in message, message
    assert "Traceback (most recent call last)" not in output
    assert not (tmp_path / "pin.yml").exists(), "a refused pin wrote the pin file"
