# SPDX-License-Identifier: GPL-3.0-or-later
"""How the molecule verifiers look at a lab node through testinfra (the lab's facts come from tests.support)."""

from __future__ import annotations

import json


def inspect(host, container: str) -> dict:
    return json.loads(host.check_output(f"docker inspect {container}"))[0]


def through_nginx(host, domain: str, path: str) -> str:
    return host.check_output(f"curl -s -m 10 -H 'Host: {domain}' http://127.0.0.1{path}")


def audit(host) -> list:
    text = host.check_output("cat /var/log/pinned-release/audit.jsonl")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
