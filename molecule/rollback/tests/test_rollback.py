# SPDX-License-Identifier: GPL-3.0-or-later
"""After the emergency rollback: v1 again, healthy, its data from before the migration, recorded."""

from __future__ import annotations

import json

import labinfo
import yaml

from tests.support.lab import APP_REPO, ROOT, registry_digest
from tests.support.workflow import TENANTS

testinfra_hosts = labinfo.lab_hosts("prod1", "prod2")
PIN_FILE = ROOT / "inventories/lab/group_vars/production/release_pin.yml"


def test_tenants_run_v1_again_healthy_on_their_pre_upgrade_data(host):
    v1 = registry_digest("v1")
    for tenant in TENANTS[host.backend.get_hostname()]:
        container = labinfo.inspect(host, f"openwebui-{tenant['name']}")
        assert container["Config"]["Image"] == f"{APP_REPO}@{v1}"
        assert container["State"]["Health"]["Status"] == "healthy"
        assert labinfo.through_nginx(host, tenant["domain"], "/api/kv/sentinel") == f"written-on-v1-by-{tenant['name']}"
        config = json.loads(labinfo.through_nginx(host, tenant["domain"], "/api/config"))
        assert config["schema"] == 1, "the v2-migrated data is still in place"
        assert config["secret_key_matches"] is True


def test_the_migrated_data_was_kept_aside_not_deleted(host):
    for tenant in TENANTS[host.backend.get_hostname()]:
        aside = host.check_output(
            f"find /opt/openwebui/{tenant['name']} -maxdepth 1 -type d -name 'data.replaced-*'"
        ).split()
        assert len(aside) == 1, f"{tenant['name']}: {aside}"
        assert host.file(f"{aside[0]}/schema_version").content_string.strip() == "2"


def test_the_rollback_is_audited_on_the_node(host):
    v1, v2 = registry_digest("v1"), registry_digest("v2")
    done = [line for line in labinfo.audit(host) if line["reason"].startswith("rollback") and line["result"] == "ok"]
    assert sorted(line["tenant"] for line in done) == sorted(t["name"] for t in TENANTS[host.backend.get_hostname()])
    assert all(line["from"] == v2 and line["to"] == v1 for line in done), done


def test_the_pin_is_back_on_v1_and_the_incident_is_recorded():
    pins = yaml.safe_load(PIN_FILE.read_text())
    v1, v2 = registry_digest("v1"), registry_digest("v2")
    assert pins["release_pin"]["image"] == f"{APP_REPO}@{v1}"
    assert pins["release_pin"]["reason"] == "rollback: molecule: v2 broke chat export"
    incidents = (PIN_FILE.parent / "ROLLBACK_INCIDENTS.md").read_text()
    row = [line for line in incidents.splitlines() if "molecule: v2 broke chat export" in line]
    assert len(row) == 1, incidents
    assert f"| {v2[:19]} | {v1[:19]} | prod1, prod2 |" in row[0]
    assert "prod1: ok, prod2: ok" in row[0]
