# SPDX-License-Identifier: GPL-3.0-or-later
"""verify_container with tenants: the transaction's own look (what tenant_rollout's check mode reports), on a fake
engine - the same drift per tenant, one engine listing per host, nothing changed, secrets masked."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.pinned.release.plugins.module_utils._drift import DriftSpecError
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.module_utils._verify import check_tenants

from ..modules.module_runner import run_module
from .fake_host import SLOW, TENANTS, V1, Host, tenant

MANAGED = {"pinned.release.managed": "true"}


def params(host: Host, tenants=None, **changes) -> dict:
    settings = {"nginx.site_dir": host.site_dir, "state_dir": str(host.tmp / "state"),
                "audit_log": str(host.tmp / "audit.jsonl")}  # fmt: skip
    return {"image": V1, "tenants": TENANTS if tenants is None else tenants, "app": host.app, "settings": settings,
            "fail_on_drift": False, **changes}  # fmt: skip


def look(host: Host, tenants=None, **changes) -> dict:
    return check_tenants(host.engine, params(host, tenants, **changes), SecretMask(), MANAGED)


def by_run(host: Host) -> dict:
    run = host.run(V1)
    assert not run.get("failed"), run
    return run


def run_by_hand(host: Host, name: str, image: str = V1, env=None) -> None:
    """A person replaces a tenant's container with docker run (the managed labels kept)."""
    spec = next(t for t in TENANTS if t["name"] == name)
    old = host.engine.by_name(f"openwebui-{name}")
    host.engine.remove(old.id)
    base = {**old.env, **(env or {})}
    new = host.engine.run_by_hand(f"openwebui-{name}", image, str(host.data(name)), spec["port"], base, old.labels)
    new.memory = old.memory
    host.clock.sleep(30)


SCENARIOS = {
    "converged": (lambda host: None, {}),
    "stopped": (lambda host: host.engine.stop("openwebui-acme", 10),
                {"openwebui-acme": ["health"]}),
    "env_changed": (lambda host: run_by_hand(host, "globex", env={"WEBUI_NAME": "Changed by hand"}),
                    {"openwebui-globex": ["env.WEBUI_NAME"]}),
    "secret_changed": (lambda host: run_by_hand(host, "acme", env={"WEBUI_SECRET_KEY": "typed-by-hand-secret-77"}),
                       {"openwebui-acme": ["env.WEBUI_SECRET_KEY"]}),
    "old_digest": (lambda host: run_by_hand(host, "acme", image=SLOW), {"openwebui-acme": ["digest"]}),
    "gone": (lambda host: host.engine.remove(host.engine.by_name("openwebui-globex").id),
             {"openwebui-globex": ["exists"]}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(SCENARIOS))
def test_each_tenant_drifts_exactly_as_the_transactions_check_mode_says(host, case):
    by_run(host)
    make, wanted = SCENARIOS[case]
    make(host)
    check_mode = host.rollout(V1).plan()
    result = look(host)
    assert {e["name"]: [d["field"] for d in e["drift"]] for e in result["containers"] if e["drift"]} == wanted
    for entry, planned in zip(result["containers"], check_mode["tenants"]):
        assert (entry["tenant"], entry["drift"], entry["action"]) == (
            planned["name"],
            planned["drift"],
            planned["action"],
        )
        assert (entry["digest"], entry["status"], entry["health"]) == (planned["current_digest"], planned["status"],
                                                                       planned["health"])  # fmt: skip
    assert result["drifted"] is bool(wanted)
    assert result["remediable"] is any(t["action"] != "none" for t in check_mode["tenants"])
    assert result["summary"]["drifted"] == len(wanted)
    assert "typed-by-hand-secret-77" not in json.dumps(result)
    assert "key-of-acme" not in json.dumps(result)


def test_a_secret_that_differs_is_masked(host):
    by_run(host)
    run_by_hand(host, "acme", env={"WEBUI_SECRET_KEY": "typed-by-hand-secret-77"})
    entry = next(e for e in look(host)["containers"] if e["tenant"] == "acme")
    assert entry["drift"] == [{"field": "env.WEBUI_SECRET_KEY", "expected": "********", "actual": "differs"}]


@pytest.mark.parametrize("count", [2, 12])
def test_one_engine_listing_per_host_and_one_inspect_per_tenant(tmp_path, count):
    host = Host(tmp_path)
    tenants = [tenant(f"t{i:02d}", 3100 + i) for i in range(count)]
    assert not host.run(V1, tenants=tenants).get("failed")
    host.engine.run_by_hand("openwebui-ghost", V1, str(tmp_path), 3999, labels=MANAGED)
    start = len(host.engine.calls)
    result = look(host, tenants)
    calls = host.engine.calls[start:]
    assert [c for c in calls if c[0] == "listing"] == [("listing", "*")], "one listing serves the whole host"
    inspected = sorted(name for verb, name in calls if verb == "inspect")
    assert len(inspected) == count + 1, inspected  # each tenant once, and the container no tenant declares
    assert not [c for c in calls if c[0] not in ("inspect", "listing")], "the look changed something"
    assert [u["name"] for u in result["unexpected"]] == ["openwebui-ghost"]
    assert result["drifted"] is True
    assert result["summary"] == {"checked": count + 1, "ok": count, "drifted": 0, "missing": 0, "unexpected": 1}


def test_the_host_findings_are_drift_files_sites_and_an_unfinished_transaction(host):
    by_run(host)
    (host.tmp / "opt/acme/app.env").write_text("WEBUI_NAME=edited by hand\n")
    os.remove(os.path.join(host.site_dir, "pinned-release-globex.conf"))
    result = look(host)
    acme = next(e for e in result["containers"] if e["tenant"] == "acme")
    assert acme["files_changed"] == ["app.env"]
    assert result["sites_to_change"] == ["pinned-release-globex.conf"]
    assert (result["drifted"], result["remediable"]) == (True, True)


def test_it_fails_on_drift_in_one_line_naming_container_field_expected_and_actual(host):
    by_run(host)
    host.engine.stop("openwebui-acme", 10)
    result = look(host, fail_on_drift=True)
    assert result["failed"] is True
    assert result["msg"].startswith("drift: openwebui-acme: health expected running and healthy, actual exited")


def test_nothing_on_disk_changes(host):
    by_run(host)
    host.engine.stop("openwebui-acme", 10)
    before = sorted((p, p.stat().st_mtime_ns) for p in host.tmp.rglob("*") if p.is_file())
    look(host)
    assert sorted((p, p.stat().st_mtime_ns) for p in host.tmp.rglob("*") if p.is_file()) == before


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"tls_min_days": "soon"}, "settings.tls_min_days must be a number"),
        ({"nginx.enabled": "maybe"}, "settings.nginx.enabled must be true or false"),
        ({"batch": 2}, "settings has unknown key(s) batch"),
        ({"isolation_allow": "backup"}, "settings.isolation_allow must be a list"),
    ],
)
def test_bad_settings_are_refused_in_one_line(host, settings, fragment):
    with pytest.raises(DriftSpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        check_tenants(host.engine, {**params(host), "settings": settings}, SecretMask(), MANAGED)


def test_the_module_checks_tenants_in_check_mode_and_masks_their_secrets(host, monkeypatch):
    # Through the module's argument spec a tenant without memory has memory None, which is no limit (not the app's).
    tenants = [t | {"memory": "1g"} for t in TENANTS]
    assert not host.run(V1, tenants=tenants).get("failed")
    run_by_hand(host, "acme", env={"WEBUI_SECRET_KEY": "typed-by-hand-secret-77"})
    args = {**params(host, tenants), "selector": MANAGED, "_ansible_check_mode": True}
    result, output = run_module("verify_container", args, monkeypatch, engine=host.engine)
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert [e["tenant"] for e in result["containers"] if e["drift"]] == ["acme"], result["containers"]
    assert "typed-by-hand-secret-77" not in output
    assert "key-of-acme" not in output


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"containers": [{"name": "x"}]}, "without containers and wait_timeout"),
        ({"wait_timeout": 5}, "without containers and wait_timeout"),
        ({"app": None}, "missing parameter(s) required by 'tenants': app"),
    ],
)
def test_the_module_refuses_tenants_mixed_with_other_checks(host, monkeypatch, changes, fragment):
    args = {k: v for k, v in {**params(host), **changes}.items() if v is not None}
    result, _output = run_module("verify_container", args, monkeypatch, engine=host.engine)
    assert result.get("failed") is True
    assert fragment in result["msg"], result["msg"]
