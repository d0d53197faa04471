# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""run_checklist's container checks on the fake engine: judged per tenant, restarts reported as a change."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.module_utils._http import Response
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.modules.run_checklist import needs_engine, run_module

from ..module_utils.fake_host import V1, Clock, FakeEngine


def params(tmp_path, checks, containers):
    return {
        "tenants": [{"name": "acme", "domain": "acme.lab", "port": 3001}, {"name": "globex", "domain": "g.lab", "port": 3002}],
        "checks": checks, "variables": {}, "per_tenant_variables": {}, "keep": None, "use_kept": None,
        "skip_if_down": False, "via": "direct", "http_port": 80, "https_port": 443, "state_dir": str(tmp_path),
        "containers": containers, "isolation_allow": [], "tls_ca": None,
    }  # fmt: skip


def entry(tmp_path, name, port):
    folder = tmp_path / name
    (folder / "data").mkdir(parents=True, exist_ok=True)
    return {"name": name, "container": f"openwebui-{name}",
            "declared": {"folder": str(folder), "mounts": [f"{folder}/data:/app/backend/data"],
                         "published_ports": [f"127.0.0.1:{port}:8080"], "stop_timeout": 30}}  # fmt: skip


def ok(*_args, **_kwargs):
    return Response(status=200, headers={"content-type": "application/json"}, body=b"{}")


def test_each_tenant_is_judged_on_its_own_container_and_a_restart_is_the_test_not_a_change(tmp_path):
    engine = FakeEngine(Clock())
    entries = [entry(tmp_path, "acme", 3001), entry(tmp_path, "globex", 3002)]
    for item, port in zip(entries, (3001, 3002)):
        engine.run_by_hand(item["container"], V1, item["declared"]["folder"] + "/data", port)
    engine.run_by_hand("peek", V1, entries[1]["declared"]["folder"], 3999)
    checks = [{"name": "isolated", "isolation": True}, {"name": "kept", "path": "/f", "restart": True}]
    result = run_module(params(tmp_path, checks, entries), SecretMask([]), send=ok, connect_engine=lambda: engine)
    by_tenant = {t["name"]: {c["name"]: c for c in t["checks"]} for t in result["tenants"]}
    assert by_tenant["acme"]["isolated"]["passed"] is True
    assert by_tenant["globex"]["isolated"]["passed"] is False
    assert "container peek mounts" in by_tenant["globex"]["isolated"]["detail"]
    assert all(by_tenant[t]["kept"]["passed"] for t in by_tenant)
    assert ("stop", "openwebui-acme") in engine.calls, "restarted"
    assert result["changed"] is False, "a test deploy run twice reports no change"


@pytest.mark.parametrize(
    ("checks", "needed"),
    [
        ([{"name": "h", "path": "/h"}], False),
        ([{"name": "r", "path": "/h", "restart": {}}], True),
        ([{"name": "r", "path": "/h", "restart": False}], False),
        ([{"name": "m", "memory": {"max": "1g"}}], True),
        ([{"name": "i", "isolation": True, "enabled": False}], False),
    ],
)
def test_the_engine_is_reached_only_when_a_check_needs_it(checks, needed):
    assert needs_engine(checks) is needed


def test_bad_checks_or_containers_are_refused_before_the_engine(tmp_path):
    with pytest.raises(
        ValueError, match=r"restart must be true, false or \{wait: seconds\} \(at most 3600\), got 'yes'"
    ):
        run_module(params(tmp_path, [{"name": "r", "path": "/", "restart": "yes"}], []), SecretMask([]), send=ok)
    with pytest.raises(ValueError, match=r"containers\[0\] must have a tenant name and a container name"):
        run_module(params(tmp_path, [{"name": "h", "path": "/"}], [{"name": "acme", "container": 3001}]),
                   SecretMask([]), send=ok)  # fmt: skip


def test_a_memory_check_sends_the_tenants_first_check_again_too(tmp_path):
    """run_module runs a tenant's first check on its own (is it up?), then the rest: one list of replays for both."""
    engine = FakeEngine(Clock())
    acme = entry(tmp_path, "acme", 3001)
    engine.run_by_hand(acme["container"], V1, acme["declared"]["folder"] + "/data", 3001)
    sent = []

    def record(method, url, **_kwargs):
        sent.append(url.rsplit(":3001", 1)[-1])
        return ok()

    checks = [{"name": "health", "path": "/health"}, {"name": "db", "path": "/health/db"},
              {"name": "memory", "memory": {"max": "1g"}}]  # fmt: skip
    one = params(tmp_path, checks, [acme])
    one["tenants"] = one["tenants"][:1]
    result = run_module(one, SecretMask([]), send=record, connect_engine=lambda: engine)
    assert result["tenants"][0]["checks"][2]["passed"] is True, result
    assert sent == ["/health", "/health/db", "/health", "/health/db"]


def test_kept_values_keep_lists_and_mappings(tmp_path):
    import json as json_

    kept_answer = Response(status=200, headers={"content-type": "application/json"}, body=b'[{"id": "b1"}]')
    before = params(tmp_path, [{"name": "read", "path": "/banners", "save": {"banners_before": "."}}], [])
    before["keep"] = "before-upgrade"
    run_module(before, SecretMask([]), send=lambda *a, **k: kept_answer)
    kept = json_.loads((tmp_path / "checklist" / "before-upgrade" / "acme.json").read_text())
    assert kept == {"banners_before": [{"id": "b1"}]}, "and this run's password is never kept"


def test_a_certificate_check_asks_nginx_for_each_tls_tenants_domain_and_skips_the_others(tmp_path):
    asked = []

    def fetch_certificate(address, port, server_name, ca_file):
        asked.append((address, port, server_name, ca_file))
        return None, f"the certificate served for {server_name} does not chain to the CA in {ca_file}"

    given = params(tmp_path, [{"name": "certificate", "certificate": {"min_days": 30}}], [])
    given.update(via="nginx", https_port=8443, tls_ca="/etc/lab/ca.crt")
    given["tenants"][0].update(tls_cert="/etc/lab/acme.crt", tls_key="/etc/lab/acme.key")
    result = run_module(given, SecretMask([]), send=ok, fetch_certificate=fetch_certificate)
    assert asked == [("127.0.0.1", 8443, "acme.lab", "/etc/lab/ca.crt")]
    acme, globex = ({c["name"]: c for c in t["checks"]} for t in result["tenants"])
    assert acme["certificate"] == {"name": "certificate", "passed": False,
                                   "detail": "the certificate served for acme.lab does not chain to the CA in /etc/lab/ca.crt"}  # fmt: skip
    assert globex["certificate"]["skipped"] is True
    given.update(via="direct")
    direct = run_module(given, SecretMask([]), send=ok, fetch_certificate=fetch_certificate)
    assert direct["tenants"][0]["checks"][0] == {
        "name": "certificate", "passed": False,
        "detail": "the certificate is served by nginx, and via=direct does not go through it"}  # fmt: skip
    assert globex["certificate"]["passed"] is True
    assert result["passed"] is False
