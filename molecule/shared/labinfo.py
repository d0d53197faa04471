# SPDX-License-Identifier: GPL-3.0-or-later
"""What the molecule verifiers know about the lab: its inventory and its registry (read on the controller)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
INVENTORY = ROOT / "inventories/lab"
REPOSITORY = yaml.safe_load((INVENTORY / "group_vars/all/release.yml").read_text())["release_app_repository"]


def tenants(node: str) -> list:
    return yaml.safe_load((INVENTORY / f"host_vars/{node}.yml").read_text())["release_tenants"]


def digest(tag: str) -> str:
    registry, repository = REPOSITORY.split("/", 1)
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.headers["Docker-Content-Digest"]


def inspect(host, container: str) -> dict:
    return json.loads(host.check_output(f"docker inspect {container}"))[0]


def through_nginx(host, domain: str, path: str) -> str:
    return host.check_output(f"curl -s -m 10 -H 'Host: {domain}' http://127.0.0.1{path}")


def audit(host) -> list:
    text = host.check_output("cat /var/log/pinned-release/audit.jsonl")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
