# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS end to end on the lab: the lab's CA issues each test tenant's certificate, nginx serves them over HTTPS and
redirects HTTP, the checklist trusts that CA only, and drift reports a certificate about to expire."""

from __future__ import annotations

import json

import yaml

from tests.support.lab import ansible_module, lab_script, node_sh
from tests.support.workflow import diagnostics

NODE = "test1"
TLS_DIR = "/etc/pinned-lab/tls"
CERTIFICATE_CHECK = "the certificate is valid and trusted for 14 more days"


def prepare_workspace(workspace):
    """Every tenant of the test host with a certificate from the lab's CA, valid for 90 days."""
    host_vars = workspace.directory / f"host_vars/{NODE}.yml"
    declared = yaml.safe_load(host_vars.read_text())
    for entry in declared["release_tenants"]:
        lab_script("tls-issue", NODE, entry["domain"], "90")
        entry.update(tls_cert=f"{TLS_DIR}/{entry['domain']}.crt", tls_key=f"{TLS_DIR}/{entry['domain']}.key")
    host_vars.write_text(yaml.safe_dump(declared))
    workspace.tenants = declared["release_tenants"]


def curl(*args: str) -> str:
    return node_sh(NODE, "curl -sS --max-time 10 " + " ".join(args), check=False).stdout


def served(tenant: dict) -> dict:
    """What the certificate check reads of a tenant (its env holds Jinja this ad-hoc call's inventory cannot render)."""
    return {key: tenant[key] for key in ("name", "domain", "port", "tls_cert", "tls_key")}


def certificate_check(tenant: dict) -> dict:
    """run_checklist's certificate check on the test host for one tenant, as the test_deploy role runs it."""
    result = ansible_module("pinned.release.run_checklist", {
        "tenants": [served(tenant)], "checks": [{"name": "certificate", "certificate": {"min_days": 14}}],
        "tls_ca": f"{TLS_DIR}/ca.crt",
    }, host=NODE)  # fmt: skip
    assert "tenants" in result, result
    return result["tenants"][0]["checks"][0]


def test_every_test_tenant_is_served_over_https_and_the_checklist_trusts_the_lab_ca(ws):
    digest = ws.release("v1")
    run = ws.play("playbooks/deploy.yml", "-l", "test")
    assert run.returncode == 0, run.output[-3000:] + diagnostics([NODE])
    record = json.loads((ws.evidence_dir / f"{digest.replace(':', '-')}.json").read_text())
    for entry in ws.tenants:
        checks = {c["name"]: c for c in record["hosts"][NODE]["tenants"][entry["name"]]["checks"]}
        assert checks[CERTIFICATE_CHECK]["passed"] is True, checks[CERTIFICATE_CHECK]
        assert "issued by pinned.release lab CA, 89 days left" in checks[CERTIFICATE_CHECK]["detail"]
        assert all(c["passed"] and not c.get("skipped") for c in checks.values()), "every check ran over HTTPS"
        domain = entry["domain"]
        redirect = curl(
            "-o /dev/null -w '%{http_code} %{redirect_url}'", f"-H 'Host: {domain}'", "http://127.0.0.1/health"
        )
        assert redirect == f"301 https://{domain}/health"
        health = curl(f"--cacert {TLS_DIR}/ca.crt --resolve {domain}:443:127.0.0.1", f"https://{domain}/health")
        assert json.loads(health)["status"] is True, health
        env = node_sh(NODE, f"docker inspect -f '{{{{json .Config.Env}}}}' openwebui-{entry['name']}").stdout
        assert f"WEBUI_URL=https://{domain}" in json.loads(env), "the app is told its own URL is HTTPS"


def test_a_certificate_about_to_expire_is_drift_and_fails_the_certificate_check(ws):
    assert ws.play("playbooks/promote.yml").returncode == 0
    alpha, beta = ws.tenants
    lab_script("tls-issue", NODE, beta["domain"], "5")
    node_sh(NODE, "nginx -s reload")  # the new certificate served, as a renewal hook would do
    pin = f"@{ws.pin_file}"  # the pin is production's group variable: the test host is checked against it by hand
    run = ws.play("playbooks/drift.yml", "-e", "drift_hosts=test", "-e", pin)
    assert run.returncode != 0, "drift fails the run"
    report = json.loads((ws.directory / ".release_state/drift/report.json").read_text())
    rows = [r for r in report["rows"] if r["field"] == "certificate"]
    assert [r["container"] for r in rows] == [f"openwebui-{beta['name']}"], report["rows"]
    assert "expires in 4 day(s)" in rows[0]["actual"]
    assert "sooner than the 14 days required" in rows[0]["actual"]
    assert len(report["rows"]) == 1, "nothing else drifted"
    assert "expires in 4 day(s)" in certificate_check(beta)["detail"]
    assert certificate_check(alpha)["passed"] is True
    # an operator who accepts a shorter window says so
    accepted = ws.play("playbooks/drift.yml", "-e", "drift_hosts=test", "-e", pin, "-e", "tenant_tls_min_days=3")
    assert accepted.returncode == 0, accepted.output[-2000:]


def test_a_certificate_for_another_name_or_from_another_ca_is_not_trusted(ws):
    beta = ws.tenants[1]
    other = "gamma.test.lab"
    lab_script("tls-issue", NODE, other, "90")
    node_sh(NODE, f"cp {TLS_DIR}/{other}.crt {TLS_DIR}/{beta['domain']}.crt && cp {TLS_DIR}/{other}.key "
                  f"{TLS_DIR}/{beta['domain']}.key && nginx -s reload")  # fmt: skip
    outcome = certificate_check(beta)
    assert outcome["passed"] is False
    assert outcome["detail"] == f"the certificate served for {beta['domain']} is not valid for that name"
    lab_script("tls-issue", NODE, beta["domain"], "90")
    node_sh(NODE, "nginx -s reload")
    assert certificate_check(beta)["passed"] is True
    untrusted = ansible_module("pinned.release.run_checklist", {
        "tenants": [served(beta)], "checks": [{"name": "certificate", "certificate": True}],
    }, host=NODE)["tenants"][0]["checks"][0]  # fmt: skip
    assert untrusted["detail"] == f"the certificate served for {beta['domain']} does not chain to the system's CAs"
