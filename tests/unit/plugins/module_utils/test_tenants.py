# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.pinned.release.plugins.module_utils._tenants import (
    check_outcome,
    evidence_hosts,
    tenant_expectations,
    tenant_problems,
    tenant_secret_files,
    tenant_specs,
)

ROOT = Path(__file__).resolve().parents[4]
APP = yaml.safe_load((ROOT / "roles/tenant/defaults/main.yml").read_text())["tenant_app_defaults"]
IMAGE = "ghcr.io/acme/open-webui@sha256:" + "a" * 64
T1 = {
    "name": "acme",
    "domain": "chat.acme.example",
    "port": 3001,
    "env": {"WEBUI_NAME": "Acme"},
    "secrets": {"WEBUI_SECRET_KEY": "s3cr3t"},
}


@pytest.mark.parametrize(
    ("tenants", "image", "problem"),
    [
        ([T1], "ghcr.io/acme/open-webui:release", "not pinned"),
        ("acme", IMAGE, "must be a list"),
        (["acme"], IMAGE, "must be a mapping"),
        ([{**T1, "name": "Acme"}], IMAGE, "name must be lowercase"),
        ([{**T1, "domain": "not a domain"}], IMAGE, "is not a lowercase host name"),
        ([{**T1, "port": 70000}], IMAGE, "port 70000 must be a number"),
        ([{**T1, "port": "3001"}], IMAGE, "must be a number"),
        ([T1, {**T1, "domain": "b.example"}], IMAGE, "name 'acme' is already used"),
        ([T1, {**T1, "name": "b", "domain": "b.example"}], IMAGE, "port 3001 is already used by tenant 'acme'"),
        ([{**T1, "secrets": {}}], IMAGE, "secret WEBUI_SECRET_KEY is missing or empty"),
        ([{**T1, "env": {"bad-key": "1"}}], IMAGE, "is not a valid environment variable name"),
        ([{**T1, "env": {"A": "x\ny"}}], IMAGE, "contains a line break"),
        ([{**T1, "env": {"WEBUI_SECRET_KEY": "x"}}], IMAGE, "set both in env and secrets"),
    ],
)
def test_tenant_problems(tenants, image, problem):
    problems = tenant_problems(tenants, APP, image)
    assert any(problem in p for p in problems), problems


def test_valid_tenants_have_no_problem():
    assert tenant_problems([T1, {**T1, "name": "b", "domain": "b.example", "port": 3002}], APP, IMAGE) == []


def test_spec_carries_no_secret_and_runs_by_digest_on_loopback():
    (spec,) = tenant_specs([T1], {**APP, "scheme": "https"}, IMAGE)
    assert "s3cr3t" not in repr(spec)
    assert spec["container"] == "openwebui-acme"
    assert spec["run_argv"][-1] == IMAGE
    assert "127.0.0.1:3001:8080" in spec["run_argv"]
    assert "/opt/openwebui/acme/data:/app/backend/data" in spec["run_argv"]
    assert spec["env_file_content"].splitlines() == sorted(
        [
            "ENABLE_VERSION_UPDATE_CHECK=false",
            "OPENID_REDIRECT_URI=https://chat.acme.example/oauth/oidc/callback",
            "WEBUI_NAME=Acme",
            "WEBUI_URL=https://chat.acme.example",
        ]
    )
    assert f"pinned.release.digest={IMAGE.split('@')[1]}" in spec["run_argv"]


def test_expectations_and_secret_files_carry_the_secret_for_their_consumers():
    (expectation,) = tenant_expectations([T1], APP, IMAGE, "running", ["openwebui-acme"])
    assert expectation["env"]["WEBUI_SECRET_KEY"] == "s3cr3t"
    assert expectation["secret_env"] == ["WEBUI_SECRET_KEY"]
    assert expectation["health"] == "running"
    assert tenant_expectations([T1], APP, IMAGE, names=["other"]) == []
    assert tenant_secret_files([T1], APP, IMAGE) == [
        {"path": "/opt/openwebui/acme/secrets.env", "content": "WEBUI_SECRET_KEY=s3cr3t\n"}
    ]


def test_specs_refuse_problems():
    with pytest.raises(ValueError, match="port"):
        tenant_specs([{**T1, "port": 0}], APP, IMAGE)


@pytest.mark.parametrize(
    ("check", "response", "passed", "detail"),
    [
        (
            {"path": "/health", "json": {"status": True}},
            {"status": 200, "content": '{"status": true}'},
            True,
            "HTTP 200",
        ),
        (
            {"path": "/health", "json": {"status": True}},
            {"status": 200, "content": '{"status": false}'},
            False,
            "JSON 'status' is false",
        ),
        ({"path": "/health"}, {"status": 503, "content": ""}, False, "HTTP 503, expected 200"),
        ({"path": "/x", "status": 404}, {"status": 404, "content": ""}, True, "HTTP 404"),
        ({"path": "/v", "json_keys": ["version"]}, {"status": 200, "content": '{"v": 1}'}, False, "JSON lacks version"),
        ({"path": "/v", "json": {}}, {"status": 200, "content": "<html>"}, False, "body is not JSON"),
        ({"path": "/s", "contains": "[DONE]"}, {"status": 200, "content": "data: 1"}, False, "does not contain"),
        (
            {"path": "/s", "content_type": "text/event-stream"},
            {"status": 200, "content_type": "text/html", "content": ""},
            False,
            "content type text/html",
        ),
        (
            {"path": "/s", "content_type": "text/event-stream"},
            {"status": 200, "content_type": "text/event-stream; charset=utf-8", "content": ""},
            True,
            "HTTP 200",
        ),
        ({"path": "/h"}, {"status": -1, "msg": "Connection refused"}, False, "no answer: Connection refused"),
    ],
)
def test_check_outcome(check, response, passed, detail):
    outcome = check_outcome(check, response)
    assert outcome["passed"] is passed
    assert detail in outcome["detail"]


def test_evidence_hosts():
    hostvars = {
        "t1": {"_test_deploy_outcomes": [{"tenant": "a", "name": "health", "passed": True, "detail": "HTTP 200"}]},
        "t2": {"_test_deploy_failure": "not healthy"},
        "t3": {"_test_deploy_outcomes": []},
    }
    record = evidence_hosts(["t1", "t2", "t3"], hostvars)
    assert record["t1"] == {
        "passed": True,
        "deploy_error": None,
        "tenants": {"a": {"passed": True, "checks": [{"name": "health", "passed": True, "detail": "HTTP 200"}]}},
    }
    assert record["t2"]["passed"] is False
    assert record["t3"]["passed"] is False, "no check run is no evidence"


@pytest.mark.parametrize(
    "host_vars", sorted((ROOT / "inventories").glob("*/host_vars/*.yml")), ids=lambda p: f"{p.parts[-3]}/{p.name}"
)
def test_shipped_inventories_declare_deployable_tenants(host_vars):
    text = re.sub(r"\{\{ *vault_\w+ *\}\}", "vault-placeholder", host_vars.read_text())
    tenants = yaml.safe_load(text)["release_tenants"]
    assert tenant_problems(tenants, APP, IMAGE) == []
