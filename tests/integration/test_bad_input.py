# SPDX-License-Identifier: GPL-3.0-or-later
"""Every module and filter turns bad input into one line naming the thing at fault, and changes nothing.

Each row is run for real (ansible ad hoc, on a lab node for the host modules): wrong types, missing keys,
empty lists, absent containers. A row passes when the run failed, its message is one line that contains the
expected fragment, no traceback or MODULE FAILURE reached the output, and the node has no new container.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.lab import APP_REPO, ROOT, ansible_module, node_sh, registry_digest, run

NODE = "test1"
APP = yaml.safe_load((ROOT / "roles/tenant/defaults/main.yml").read_text())["tenant_app_defaults"] | {
    "scheme": "http",
    "data_root": "/opt/bad-input",
    "container_prefix": "badinput-",
}
TENANT = {"name": "alpha", "domain": "alpha.bad.lab", "port": 3990, "secrets": {"WEBUI_SECRET_KEY": "k" * 32}}


def pinned() -> str:
    return f"{APP_REPO}@{registry_digest('v1')}"


def rollout(**changes) -> dict:
    args = {"image": pinned(), "tenants": [TENANT], "app": APP, "state_dir": "/var/lib/bad-input",
            "audit_log": "/var/log/bad-input.log", "nginx": {"enabled": False}}  # fmt: skip
    args.update(changes)
    return args


HOST_ROWS = [
    # tenant_rollout
    ("tenant_rollout", lambda: rollout(tenants=[TENANT | {"port": 70000}]), "port"),
    ("tenant_rollout", lambda: rollout(tenants=["alpha"]), "tenants[0]"),
    ("tenant_rollout", lambda: rollout(tenants=[TENANT | {"port": [3990]}]), "port"),
    ("tenant_rollout", lambda: rollout(tenants=[TENANT | {"domain": {"a": 1}}]), "domain"),
    ("tenant_rollout", lambda: rollout(tenants=[TENANT | {"name": ["alpha"]}]), "name"),
    ("tenant_rollout", lambda: rollout(tenants=[TENANT | {"env": ["A=1"]}]), "env"),
    (
        "tenant_rollout",
        lambda: rollout(tenants=[{k: v for k, v in TENANT.items() if k != "secrets"}]),
        "WEBUI_SECRET_KEY",
    ),
    ("tenant_rollout", lambda: rollout(tenants=[TENANT, TENANT]), "alpha"),
    ("tenant_rollout", lambda: rollout(image=f"{APP_REPO}:v1"), "not pinned"),
    ("tenant_rollout", lambda: rollout(image="a" * 64), "image ID"),
    ("tenant_rollout", lambda: rollout(image=f"{APP_REPO}:v1\n@{registry_digest('v1')}"), "white space"),
    ("tenant_rollout", lambda: rollout(app="openwebui"), "app"),
    ("tenant_rollout", lambda: rollout(app={k: v for k, v in APP.items() if k != "data_path"}), "data_path"),
    ("tenant_rollout", lambda: rollout(batch_size=0), "batch"),
    ("tenant_rollout", lambda: rollout(snapshot_keep=1), "snapshot_keep"),
    ("tenant_rollout", lambda: rollout(data_mode="newest"), "data_mode"),
    ("tenant_rollout", lambda: rollout(nginx="on"), "nginx"),
    ("tenant_rollout", lambda: rollout(smoke_checks=[{"name": "x", "path": "/", "json": [1]}]), "json"),
    ("tenant_rollout", lambda: rollout(break_lock="true"), "break_lock"),
    # verify_container
    (
        "verify_container",
        lambda: {"containers": [{"name": "bad-input-absent", "image": pinned()}], "wait_timeout": 2},
        "bad-input-absent",
    ),
    ("verify_container", lambda: {"containers": [{"image": pinned()}]}, "name"),
    ("verify_container", lambda: {"containers": ["x"]}, "containers"),
    ("verify_container", lambda: {"containers": [{"name": "x", "image": "x:latest"}]}, "not pinned"),
    ("verify_container", lambda: {"containers": [{"name": "x", "image": pinned(), "env": ["A=1"]}]}, "env"),
    ("verify_container", lambda: {"selector": {"label": 5}}, "selector"),
    # run_checklist
    ("run_checklist", lambda: {"tenants": [], "checks": [{"name": "h", "path": "/health"}]}, "tenants"),
    ("run_checklist", lambda: {"tenants": [TENANT], "checks": []}, "checks"),
    ("run_checklist", lambda: {"tenants": [TENANT], "checks": [{"name": "h", "path": "/", "json": [1]}]}, "json"),
    ("run_checklist", lambda: {"tenants": [TENANT], "checks": [{"name": "h", "path": "/", "status": "ok"}]}, "status"),
    ("run_checklist", lambda: {"tenants": [TENANT], "checks": ["health"]}, "'checks'"),
    (
        "run_checklist",
        lambda: {"tenants": [TENANT], "checks": [{"name": "h", "path": "/", "enabled": False}]},
        "no enabled check",
    ),
    ("run_checklist", lambda: {"tenants": [{"domain": "x"}], "checks": [{"name": "h", "path": "/"}]}, "name"),
]


@pytest.fixture
def containers_before(lab):
    yield node_sh(NODE, "docker ps -aq | sort").stdout
    # A row that failed by changing the host must not make the next ones fail too.
    node_sh(NODE, "docker rm -f badinput-alpha >/dev/null 2>&1; rm -rf /opt/bad-input /var/lib/bad-input "
                  "/var/log/bad-input.log", check=False)  # fmt: skip


@pytest.mark.parametrize(("module", "make_args", "fragment"), HOST_ROWS,
                         ids=[f"{m}-{i}" for i, (m, _a, _f) in enumerate(HOST_ROWS)])  # fmt: skip
def test_host_modules_refuse_bad_input_in_one_line(containers_before, module, make_args, fragment):
    result = ansible_module(f"pinned.release.{module}", make_args(), host=NODE)
    assert result.get("failed") is True, result
    message = result.get("msg", "")
    assert "\n" not in message.strip(), message
    assert fragment in message, message
    assert "Traceback" not in result["_stdout"]
    assert "MODULE FAILURE" not in result["_stdout"]
    assert node_sh(NODE, "docker ps -aq | sort").stdout == containers_before, "a bad input changed the host"
    assert node_sh(NODE, "ls /opt/bad-input 2>/dev/null | wc -l").stdout.strip() == "0"


def pin_args(tmp, **changes) -> dict:
    return {"path": str(tmp / "pin.yml"), "image": pinned(), "reason": "bad input test", **changes}


CONTROLLER_ROWS = [
    ("pin_digest", lambda tmp: pin_args(tmp, image="repo:tag"), "not pinned"),
    ("pin_digest", lambda tmp: pin_args(tmp, image="a" * 64), "image ID"),
    ("pin_digest", lambda tmp: pin_args(tmp, reason=""), "reason is required"),
    ("pin_digest", lambda tmp: pin_args(tmp, kind="hotfix"), "kind"),
    ("pin_digest", lambda tmp: pin_args(tmp, require_evidence=True, evidence=str(tmp / "absent.json")), "evidence"),
    ("pin_digest", lambda tmp: pin_args(tmp, targets=[str(tmp / "absent.sh")], require_evidence=False), "absent.sh"),
    ("resolve_digest", lambda tmp: {"image": "ghcr.io/Acme/app:v1"}, "lowercase"),
    ("resolve_digest", lambda tmp: {"images": []}, "images"),
    ("resolve_digest", lambda tmp: {"image": f"{APP_REPO}:v1", "platform": "amd64"}, "platform"),
]


@pytest.mark.parametrize(("module", "make_args", "fragment"), CONTROLLER_ROWS,
                         ids=[f"{m}-{i}" for i, (m, _a, _f) in enumerate(CONTROLLER_ROWS)])  # fmt: skip
def test_controller_modules_refuse_bad_input_in_one_line(lab, tmp_path, module, make_args, fragment):
    result = ansible_module(f"pinned.release.{module}", make_args(tmp_path))
    assert result.get("failed") is True, result
    message = result.get("msg", "")
    assert "\n" not in message.strip(), message
    assert fragment in message, message
    assert "Traceback" not in result["_stdout"]
    assert not (tmp_path / "pin.yml").exists(), "a refused pin wrote the pin file"


FILTER_ROWS = [
    ("tenant_specs", "[{'name': ['a']}] | pinned.release.tenant_specs({}, 'repo:tag')", "tenant_specs"),
    ("tenant_problems-settings", "[] | pinned.release.tenant_problems({}, none, 5)", "settings must be a mapping"),
    ("rollout_lines", "'x' | pinned.release.rollout_lines", "rollout_lines"),
    ("drift_report", "5 | pinned.release.drift_report('x')", "drift_report"),
    ("drift_markdown", "[1] | pinned.release.drift_markdown('2026-11-25')", "drift_markdown"),
    ("drift_junit", "'x' | pinned.release.drift_junit", "drift_junit"),
    ("drift_row", "5 | pinned.release.drift_row", "drift_row"),
    ("evidence_path", "5 | pinned.release.evidence_path('/tmp')", "evidence_path"),
    ("evidence_record", "5 | pinned.release.evidence_record({}, 'c', 'op', 'now')", "evidence_record"),
    ("evidence_path-digest", "'abc' | pinned.release.evidence_path('/tmp')", "evidence_path"),
    ("evidence_gate", "5 | pinned.release.evidence_gate('/tmp')", "evidence_gate"),
    ("rollback_target", "5 | pinned.release.rollback_target([])", "rollback_target"),
    ("rollback_outcome", "5 | pinned.release.rollback_outcome(none)", "rollback_outcome"),
    ("rollback_incident-outcome", "{'prod1': 5} | pinned.release.rollback_incident({}, 'r', 't', 'op')", "prod1"),
    ("rollback_target-history", "none | pinned.release.rollback_target('x')", "history"),
    ("drift_row-keys", "{'host': 'h'} | pinned.release.drift_row", "container"),
    ("rollback_incident", "5 | pinned.release.rollback_incident({}, 'r', 't', 'op')", "rollback_incident"),
]


def debug(expression: str) -> tuple:
    result = run(["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", json.dumps({"msg": "{{ " + expression + " }}"})],
                 env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})  # fmt: skip
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"], result.stdout + result.stderr


@pytest.mark.parametrize(("name", "expression", "fragment"), FILTER_ROWS, ids=[row[0] for row in FILTER_ROWS])
def test_filters_refuse_bad_input_in_one_line(name, expression, fragment):
    outcome, output = debug(expression)
    assert outcome.get("failed") is True, outcome
    assert fragment in outcome["msg"], outcome["msg"]
    assert "Traceback" not in output
    for python_error in ("object has no attribute", "unhashable", "missing 1 required", "is not subscriptable"):
        assert python_error not in outcome["msg"], outcome["msg"]


@pytest.mark.parametrize(
    ("tenants", "fragment"),
    [
        ("'acme'", "release_tenants must be a list"),
        ("[{'name': ['a'], 'domain': 'a.lab', 'port': 3000}]", "name"),
        ("[{'name': 'a', 'domain': {'x': 1}, 'port': 3000}]", "domain"),
        ("[{'name': 'a', 'domain': 'a.lab', 'port': [3000]}]", "port"),
        ("[{'name': 'a', 'domain': 'a.lab', 'port': 3000, 'env': ['A=1']}]", "env"),
    ],
)
def test_tenant_problems_name_each_bad_tenant_in_one_line(tenants, fragment):
    app = json.dumps(APP)
    outcome, output = debug(f"{tenants} | pinned.release.tenant_problems({app})")
    assert outcome.get("failed") is not True, outcome
    problems = outcome["msg"]
    assert any(fragment in problem and "\n" not in problem for problem in problems), problems
    assert "Traceback" not in output
