# SPDX-License-Identifier: GPL-3.0-or-later
"""After test -> promote -> production rollout -> drift check: what the nodes and the controller show."""

from __future__ import annotations

import json
import os
from pathlib import Path

import labinfo
import yaml

from tests.support.lab import APP_REPO, ROOT, registry_digest
from tests.support.workflow import TENANTS

testinfra_hosts = labinfo.lab_hosts("test1", "prod1", "prod2")
STATE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory/.release_state"
PIN_FILE = ROOT / "inventories/lab/group_vars/production/release_pin.yml"


def test_every_tenant_runs_the_pinned_digest_healthy(host):
    pin = yaml.safe_load(PIN_FILE.read_text())["release_pin"]
    v1 = registry_digest("v1")
    assert pin["image"] == f"{APP_REPO}@{v1}"
    for tenant in TENANTS[host.backend.get_hostname()]:
        container = labinfo.inspect(host, f"openwebui-{tenant['name']}")
        assert container["Config"]["Image"] == pin["image"]
        assert container["State"]["Health"]["Status"] == "healthy"
        assert json.loads(labinfo.through_nginx(host, tenant["domain"], "/api/version")) == {"version": "1.0.0"}


def test_the_pin_rests_on_evidence_for_that_digest_and_is_documented():
    pin = yaml.safe_load(PIN_FILE.read_text())["release_pin"]
    digest = pin["image"].split("@")[1]
    evidence = json.loads((STATE / f"evidence/{digest.replace(':', '-')}.json").read_text())
    assert evidence["digest"] == digest
    assert evidence["passed"] is True
    assert digest in (PIN_FILE.parent / "DOCKER_IMAGE_PIN.md").read_text()


def test_drift_check_found_the_fleet_clean():
    report = json.loads((STATE / "drift/report.json").read_text())
    assert report["drifted"] is False, report
    assert sorted(report["hosts"]) == ["prod1", "prod2"]
