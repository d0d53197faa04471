# SPDX-License-Identifier: GPL-3.0-or-later
"""After converge (v1), idempotence and the side effect (data written, then v2), on test1 itself."""

from __future__ import annotations

import json

import labinfo

from tests.support.lab import APP_REPO, registry_digest
from tests.support.workflow import TENANTS

testinfra_hosts = labinfo.lab_hosts("test1")
TEST1_TENANTS = TENANTS["test1"]


def test_tenants_run_v2_by_digest_healthy_with_their_labels(host):
    v2 = registry_digest("v2")
    for tenant in TEST1_TENANTS:
        container = labinfo.inspect(host, f"openwebui-{tenant['name']}")
        assert container["Config"]["Image"] == f"{APP_REPO}@{v2}"
        assert container["State"]["Health"]["Status"] == "healthy"
        labels = container["Config"]["Labels"]
        assert labels["pinned.release.managed"] == "true"
        assert labels["pinned.release.tenant"] == tenant["name"]
        assert labels["pinned.release.digest"] == v2
        assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_data_written_on_v1_survived_the_move_to_v2_and_was_migrated(host):
    for tenant in TEST1_TENANTS:
        assert labinfo.through_nginx(host, tenant["domain"], "/api/kv/sentinel") == f"written-on-v1-by-{tenant['name']}"
        config = json.loads(labinfo.through_nginx(host, tenant["domain"], "/api/config"))
        assert config["schema"] == 2
        assert config["secret_key_matches"] is True, "the secret key changed across the recreate"
        version = json.loads(labinfo.through_nginx(host, tenant["domain"], "/api/version"))
        assert version == {"version": "2.0.0"}


def test_the_v1_data_was_snapshotted_before_the_replace(host):
    v1, v2 = registry_digest("v1"), registry_digest("v2")
    for tenant in TEST1_TENANTS:
        moves = [line for line in labinfo.audit(host) if line["tenant"] == tenant["name"] and line["to"] == v2]
        assert len(moves) == 1, moves
        assert moves[0]["from"] == v1, moves
        assert moves[0]["result"] == "ok", moves
        snapshot = host.file(moves[0]["snapshot"])
        assert snapshot.exists
        assert snapshot.mode == 0o600
        assert "data/" in host.check_output(f"tar -tzf {moves[0]['snapshot']}")


def test_nginx_serves_each_tenant_from_its_own_site(host):
    assert host.run("nginx -t").rc == 0
    for tenant in TEST1_TENANTS:
        site = host.file(f"/etc/nginx/conf.d/pinned-release-{tenant['name']}.conf")
        assert site.exists
        assert site.mode == 0o644
        assert tenant["domain"] in site.content_string
        assert f"127.0.0.1:{tenant['port']}" in site.content_string
