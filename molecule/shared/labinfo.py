# SPDX-License-Identifier: GPL-3.0-or-later
"""How the molecule verifiers look at a lab node through testinfra (the lab's facts come from tests.support)."""

from __future__ import annotations

import json

from tests.support.lab import LAB_HOME, NODES, ROOT

SSH_CONFIG = ROOT / ".build/molecule/ssh_config"


def lab_hosts(*names: str) -> list:
    """testinfra host specs for lab nodes over its own SSH backend (one shared connection per node), not through Ansible:
    a check is one ssh command, not an ansible run."""
    SSH_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    SSH_CONFIG.write_text("".join(
        f"Host {name}\n  HostName 127.0.0.1\n  Port {node.ssh_port}\n  User root\n"
        f"  IdentityFile {LAB_HOME / 'ssh/id_ed25519'}\n  UserKnownHostsFile {LAB_HOME / 'ssh/known_hosts'}\n"
        "  StrictHostKeyChecking yes\n  BatchMode yes\n"
        for name, node in NODES.items()
    ))  # fmt: skip
    return [f"ssh://{name}?ssh_config={SSH_CONFIG}&controlpersist=120" for name in names]


def inspect(host, container: str) -> dict:
    return json.loads(host.check_output(f"docker inspect {container}"))[0]


def through_nginx(host, domain: str, path: str) -> str:
    return host.check_output(f"curl -s -m 10 -H 'Host: {domain}' http://127.0.0.1{path}")


def audit(host) -> list:
    text = host.check_output("cat /var/log/pinned-release/audit.jsonl")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
