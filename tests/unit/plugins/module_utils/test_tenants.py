# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.pinned.release.plugins.module_utils._engine import container_config
from ansible_collections.pinned.release.plugins.module_utils._tenants import (
    app_problems,
    checked_specs,
    env_file_content,
    expectation,
    memory_bytes,
    secrets_file_content,
    settings_problems,
    tenant_problems,
)

ROOT = Path(__file__).resolve().parents[4]
APP = yaml.safe_load((ROOT / "profiles/open-webui.yml").read_text())["runtime"]
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
        ([{**T1, "port": [3001]}], IMAGE, "port [3001] must be a number"),
        ([{**T1, "name": ["acme"]}], IMAGE, "name must be lowercase"),
        ([{**T1, "domain": {"a": 1}}], IMAGE, "is not a lowercase host name"),
        ([{**T1, "env": ["A=1"]}], IMAGE, "env must be a mapping of VARIABLE: value, got list"),
        ([{**T1, "env": {"A": {"b": 1}}}], IMAGE, "env.A must be a single value"),
        ([{**T1, "hostname": "x"}], IMAGE, "unknown key(s) hostname"),
        ([{**T1, "memory": "lots"}], IMAGE, "memory 'lots' must be a size"),
        ([{**T1, "tls_cert": "/etc/ssl/a.pem"}], IMAGE, "tls_cert and tls_key go together"),
        ([{**T1, "tls_cert": "/a.pem;\n include /x", "tls_key": "/k"}], IMAGE, "must be an absolute path"),
        ([{**T1, "tls_cert": "relative.pem", "tls_key": "/k"}], IMAGE, "must be an absolute path"),
        ([{**T1, "image": "repo:tag"}], IMAGE, "is not pinned"),
        ([{**T1, "name": "acme\n"}], IMAGE, "name must be lowercase"),
        ([{**T1, "domain": "acme.example\n"}], IMAGE, "is not a lowercase host name"),
        ([{**T1, "env": {"KEY\n": "1"}}], IMAGE, "is not a valid environment variable name"),
        ([{**T1, "memory": "700m\n"}], IMAGE, "must be a size"),
        # the shared nginx file is pinned-release-common.conf: a tenant of that name would overwrite it
        ([{**T1, "name": "common"}], IMAGE, "the name 'common' is reserved (its nginx site would be the file every"),
    ],
)
def test_tenant_problems(tenants, image, problem):
    problems = tenant_problems(tenants, APP, image)
    assert any(problem in p for p in problems), problems


def test_valid_tenants_have_no_problem():
    assert tenant_problems([T1, {**T1, "name": "b", "domain": "b.example", "port": 3002}], APP, IMAGE) == []


def test_spec_keeps_secrets_apart_and_runs_by_digest_on_loopback():
    (spec,) = checked_specs([T1], {**APP, "scheme": "https"}, IMAGE)
    assert spec["container"] == "openwebui-acme"
    assert spec["image"] == IMAGE
    assert spec["published"] == "127.0.0.1:3001:8080"
    assert spec["mount"] == "/opt/openwebui/acme/data:/app/backend/data"
    assert spec["secret_env"] == {"WEBUI_SECRET_KEY": "s3cr3t"}
    assert "s3cr3t" not in env_file_content(spec)
    assert secrets_file_content(spec) == "WEBUI_SECRET_KEY=s3cr3t\n"
    assert env_file_content(spec).splitlines() == sorted(
        [
            "ENABLE_VERSION_UPDATE_CHECK=false",
            "OPENID_REDIRECT_URI=https://chat.acme.example/oauth/oidc/callback",
            "WEBUI_NAME=Acme",
            "WEBUI_URL=https://chat.acme.example",
        ]
    )
    assert spec["labels"]["pinned.release.digest"] == IMAGE.split("@")[1]
    config = container_config(spec, "openwebui-acme.pinned-next")
    assert config["port"] == (8080, "127.0.0.1", 3001)
    assert config["env"]["WEBUI_SECRET_KEY"] == "s3cr3t"
    assert config["bind"] == ("/opt/openwebui/acme/data", "/app/backend/data")


def test_a_tenant_with_a_certificate_has_an_https_url_whatever_the_apps_scheme():
    with_tls = {**T1, "tls_cert": "/etc/tls/acme.crt", "tls_key": "/etc/tls/acme.key"}
    served_tenant = {**with_tls, "name": "globex", "port": 3002, "domain": "chat.globex.example"}
    plain, served = checked_specs([T1, served_tenant], {**APP, "scheme": "http"}, IMAGE)
    assert "WEBUI_URL=http://chat.acme.example" in env_file_content(plain).splitlines()
    assert "WEBUI_URL=https://chat.globex.example" in env_file_content(served).splitlines()
    assert (
        "OPENID_REDIRECT_URI=https://chat.globex.example/oauth/oidc/callback" in env_file_content(served).splitlines()
    )


def test_a_tenant_can_run_its_own_digest():
    own = "other.example/app@sha256:" + "b" * 64
    (spec,) = checked_specs([{**T1, "image": own}], APP, IMAGE)
    assert spec["image"] == own


@pytest.mark.parametrize(
    ("tenant_memory", "limit"),
    [
        ("absent", "1g"),  # the app profile's limit
        (None, "1g"),  # what tenant_rollout's argument spec hands over for a tenant that sets none
        ("2g", "2g"),  # the tenant's own
        ("0", "0"),  # no limit, said on purpose
    ],
)
def test_a_tenant_without_a_memory_limit_of_its_own_gets_the_apps(tenant_memory, limit):
    tenant = dict(T1) if tenant_memory == "absent" else {**T1, "memory": tenant_memory}
    (spec,) = checked_specs([tenant], {**APP, "memory": "1g"}, IMAGE)
    assert spec["memory"] == limit


def test_expectation_carries_the_secret_for_the_comparison_only():
    (spec,) = checked_specs([T1], APP, IMAGE)
    wanted = expectation(spec, "running")
    assert wanted["env"]["WEBUI_SECRET_KEY"] == "s3cr3t"
    assert wanted["secret_env"] == ["WEBUI_SECRET_KEY"]
    assert wanted["health"] == "running"


def test_specs_refuse_problems():
    with pytest.raises(ValueError, match="port"):
        checked_specs([{**T1, "port": 0}], APP, IMAGE)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"batch_size": 0}, "tenant_batch must be a number of at least 1"),
        ({"batch_size": "many"}, "tenant_batch must be a number"),
        ({"snapshot_keep": 1}, "with 1, the snapshot a rollback needs is rotated away"),
        ({"health_timeout": True}, "tenant_health_timeout must be a number"),
        ({"data_mode": "sometimes"}, "tenant_data_mode must be current, auto or restore"),
        ({"break_lock": True}, "tenant_break_lock takes the run id"),
        ({"break_lock": "true"}, "tenant_break_lock takes the run id"),
        ({"break_lock": "a b"}, "tenant_break_lock takes the run id"),
        ({"smoke_checks": [{"name": "x"}]}, "path must start with /"),
        ({"smoke_checks": "health"}, "tenant_smoke_checks must be a list"),
        ({"smoke_checks": [{"name": "h", "path": "/h", "timeout": "10s"}]}, "timeout must be a number of seconds"),
        ({"smoke_checks": [{"name": "h", "path": "/h", "sse": {"min_events": "three"}}]}, "sse.min_events must be"),
        ({"failure_scope": "host"}, "tenant_failure_scope must be batch or tenant"),
        ({"nginx.access_log_dir": "logs"}, "tenant_nginx_access_log_dir 'logs' must be an absolute path"),
        (
            {"nginx.access_log_dir": "/var/log/../etc"},
            "tenant_nginx_access_log_dir '/var/log/../etc' must be an absolute",
        ),
        ({"nginx.access_log_dir": "/var/log/x;y"}, "tenant_nginx_access_log_dir '/var/log/x;y' must be an absolute"),
    ],
)
def test_settings_problems(settings, problem):
    assert any(problem in p for p in settings_problems(settings)), settings_problems(settings)


def test_good_settings_have_no_problem():
    good = {"batch_size": "2", "health_timeout": 120, "snapshot_keep": 2, "data_mode": "auto",
            "break_lock": "20261125T170000Z-laptop-4242", "smoke_checks": [{"name": "h", "path": "/health"}]}  # fmt: skip
    assert settings_problems(good) == []
    assert settings_problems({"break_lock": "stale"}) == []
    assert settings_problems({"nginx.access_log_dir": ""}) == [], "empty: the sites log where nginx's default says"
    templated = [{"name": "h", "path": "/h", "timeout": "10", "sse": {"min_events": "3", "min_spread_ms": 150.5}}]
    assert settings_problems({"smoke_checks": templated, "failure_scope": "tenant"}) == [], "a template renders text"


def test_memory_is_read_as_docker_reads_it():
    assert [memory_bytes(m) for m in (None, "", "512", "700m", "1g", "64K")] == [
        0,
        0,
        512,
        700 * 1024**2,
        1024**3,
        65536,
    ]


@pytest.mark.parametrize(
    "host_vars", sorted((ROOT / "inventories").glob("*/host_vars/*.yml")), ids=lambda p: f"{p.parts[-3]}/{p.name}"
)
def test_shipped_inventories_declare_deployable_tenants(host_vars):
    text = re.sub(r"\{\{ *vault_\w+ *\}\}", "vault-placeholder", host_vars.read_text())
    tenants = yaml.safe_load(text)["release_tenants"]
    assert tenant_problems(tenants, APP, IMAGE) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"bind_address": "localhost"}, "release_app.bind_address must be an IP address"),
        ({"bind_address": "127.0.0.1; rm -rf /"}, "release_app.bind_address must be an IP address"),
        ({"bind_address": None}, "release_app.bind_address is missing"),
        ({"container_prefix": "Open WebUI "}, "release_app.container_prefix 'Open WebUI ' is not usable"),
        ({"container_port": "8080"}, "release_app.container_port must be a number"),
        ({"data_root": "opt/openwebui"}, "release_app.data_root must be an absolute path"),
        ({"restart_policy": "sometimes"}, "release_app.restart_policy must be one of"),
        ({"env": ["A=1"]}, "release_app.env must be a mapping"),
        ({"snapshot_exclude": ["../etc"]}, "snapshot_exclude entry '../etc' must be a path inside the data folder"),
    ],
)
def test_app_problems(changes, problem):
    found = app_problems({**APP, **changes})
    assert any(problem in p for p in found), found


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "::1", "10.1.2.3"])  # noqa: S104
def test_an_ip_address_is_a_bind_address(address):
    assert app_problems({**APP, "bind_address": address}) == []
