# SPDX-License-Identifier: GPL-3.0-or-later
"""Safety rules every scenario must leave true on the nodes that carry tenants (MOLECULE_TENANT_HOSTS)."""

from __future__ import annotations

import json
import os

import labinfo

from tests.support.workflow import TENANTS

testinfra_hosts = labinfo.lab_hosts(*os.environ["MOLECULE_TENANT_HOSTS"].split(","))


def managed(host) -> list:
    names = host.check_output("docker ps -aq --filter label=pinned.release.managed=true").split()
    assert names, "no managed tenant container on this node"
    return json.loads(host.check_output("docker inspect " + " ".join(names)))


def test_every_tenant_is_published_on_loopback_only_and_runs_by_digest(host):
    for container in managed(host):
        bindings = [b for ports in container["HostConfig"]["PortBindings"].values() for b in ports or []]
        assert bindings, f"{container['Name']} publishes nothing"
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, f"{container['Name']}: {bindings}"
        assert "@sha256:" in container["Config"]["Image"], (
            f"{container['Name']} runs a tag: {container['Config']['Image']}"
        )


def test_only_nginx_and_sshd_listen_beyond_loopback(host):
    listening = host.check_output("ss -Hltnp")
    for line in listening.splitlines():
        local = line.split()[3]
        if local.startswith(("127.", "[::1]")):
            continue
        assert "nginx" in line or "sshd" in line, f"listening beyond loopback: {line}"


def test_tenant_files_are_private_and_secrets_stay_in_their_file(host):
    node = host.backend.get_hostname()
    for tenant in TENANTS[node]:
        base = f"/opt/openwebui/{tenant['name']}"
        assert host.file(f"{base}/app.env").mode == 0o640
        assert host.file(f"{base}/secrets.env").mode == 0o600
        for secret in (tenant.get("secrets") or {}).values():
            assert secret not in host.file(f"{base}/app.env").content_string
            assert secret not in host.check_output("cat /var/log/pinned-release/audit.jsonl")
            assert secret not in host.check_output(f"cat /etc/nginx/conf.d/pinned-release-{tenant['name']}.conf")


def test_audit_log_is_json_lines_naming_tenant_digests_and_result(host):
    lines = labinfo.audit(host)
    assert lines, "no audit line"
    for line in lines:
        assert {"time", "host", "operator", "tenant", "from", "to", "result", "reason"} <= set(line), line
        assert line["operator"] == "molecule"
