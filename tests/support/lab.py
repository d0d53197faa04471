# SPDX-License-Identifier: GPL-3.0-or-later
"""The embedded lab as the tests see it: nodes over SSH, the registry over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB_HOME = Path(os.environ.get("PINNED_LAB_HOME", "/var/lib/pinned-release-lab"))
REGISTRY = "127.0.0.1:" + os.environ.get("PINNED_LAB_REGISTRY_PORT", "5000")
APP_REPO = f"{REGISTRY}/pinned/openwebui"
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass(frozen=True)
class Node:
    name: str
    ssh_port: int
    http_port: int
    group: str


def read_topology(inventory: Path) -> dict:
    """The lab's nodes from its INI inventory, the one place they are written (lab/lab.sh reads it too)."""
    nodes, group = {}, None
    for line in inventory.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            group = line.strip("[]")
            continue
        if group.endswith(":vars"):
            continue
        name, *pairs = line.split()
        variables = dict(pair.split("=", 1) for pair in pairs)
        nodes[name] = Node(name, int(variables["ansible_port"]), int(variables["lab_http_port"]), group)
    return nodes


def _cell() -> int | str:
    """The lab cell this process works on: PINNED_LAB_CELL (a number, or ``fleet``: lab/lab.sh up --production-nodes N),
    else the pytest-xdist worker's number (gw1 -> cell 1)."""
    explicit = os.environ.get("PINNED_LAB_CELL")
    if explicit:
        return explicit if explicit == "fleet" else int(explicit)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


# Cell 0 is the lab inventory itself; cell K ("cK") its copy with ports +10*K (lab/lab.sh up --cells); the fleet the
# inventory lab/lab.sh up --production-nodes N wrote. Each but cell 0 has its own :release tag and node names.
CELL = _cell()
CELL_NAME = "fleet" if CELL == "fleet" else f"c{CELL}"
FLEET_INVENTORY = LAB_HOME / "cells/fleet/inventory/hosts.ini"
CELL_INVENTORY = (
    ROOT / "inventories/lab/hosts.ini" if CELL == 0 else LAB_HOME / f"cells/{CELL_NAME}/inventory/hosts.ini"
)
NODES = read_topology(CELL_INVENTORY) if CELL == 0 or CELL_INVENTORY.exists() else {}
RELEASE_TAG = "release" if CELL == 0 else f"release-{CELL_NAME}"
NODE_CONTAINER_PREFIX = "pinned-lab-" if CELL == 0 else f"pinned-lab-{CELL_NAME}-"


# One SSH connection per node, reused by every command (50 ms a command instead of 300): the tests run thousands.
SSH_MULTIPLEX = [
    "-o", "ControlMaster=auto", "-o", f"ControlPath={LAB_HOME / 'ssh'}/mux-%C", "-o", "ControlPersist=30",
    "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3",
]  # fmt: skip


def node_sh(
    node: str, command: str, check: bool = True, timeout: int = 120, nodes: dict | None = None
) -> subprocess.CompletedProcess:
    """Run a shell command on a lab node over real SSH (a node of this process's cell, or of ``nodes``)."""
    ssh = [
        "ssh", "-q", "-i", str(LAB_HOME / "ssh/id_ed25519"),
        "-o", f"UserKnownHostsFile={LAB_HOME / 'ssh/known_hosts'}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
        "-p", str((nodes or NODES)[node].ssh_port),
    ]  # fmt: skip
    result = subprocess.run([*ssh, *SSH_MULTIPLEX, "root@127.0.0.1", command], capture_output=True, text=True,
                            timeout=timeout, check=False)  # fmt: skip
    if result.returncode == 255:  # ssh's own failure: the shared connection may be to a node restarted since
        subprocess.run(
            [*ssh, *SSH_MULTIPLEX, "-O", "exit", "root@127.0.0.1"], capture_output=True, timeout=15, check=False
        )
        result = subprocess.run([*ssh, "-o", "ControlPath=none", "root@127.0.0.1", command], capture_output=True,
                                text=True, timeout=timeout, check=False)  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(
            f"cell {CELL} {node}: `{command}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def registry_digest(tag: str, repository: str = "pinned/openwebui") -> str:
    """The digest the lab registry serves for a tag (what docker pull records)."""
    request = urllib.request.Request(
        f"http://{REGISTRY}/v2/{repository}/manifests/{tag}", method="HEAD", headers={"Accept": MANIFEST_ACCEPT}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Docker-Content-Digest"]


def lab_script(*args: str, cell: int | str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """lab/lab.sh on this process's cell (or ``cell``); a failure says what the script said."""
    cell = CELL if cell is None else cell
    result = subprocess.run([str(ROOT / "lab/lab.sh"), *args], capture_output=True, text=True, check=False,
                            env=dict(os.environ, PINNED_LAB_CELL=str(cell), **(env or {})))  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(
            f"cell {cell}: lab/lab.sh {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
        )
    return result


def signing_credentials() -> tuple[str, str]:
    """(user, password) of the lab's signing registry, started first: on a machine where nothing has signed yet, its
    credentials file does not exist until the registry is started."""
    lab_script("signing-registry-start")
    user, _colon, password = (LAB_HOME / "signing-registry/credentials").read_text().strip().partition(":")
    return user, password


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """A command (ansible, ansible-playbook) with the checkout's configuration, on this process's lab cell."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_INVENTORY=str(CELL_INVENTORY))  # fmt: skip
    env.update(kwargs.pop("env", {}))
    check = kwargs.pop("check", False)
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=kwargs.pop("cwd", ROOT), env=env, check=check, **kwargs
    )


def container_state(node: str, name: str) -> dict:
    result = node_sh(node, f"docker inspect {name}", check=False)
    return json.loads(result.stdout)[0] if result.returncode == 0 else {}


def ansible_module(module: str, args: dict, check: bool = False, host: str = "localhost") -> dict:
    """Run one module with ansible ad hoc and return its result dict (json callback)."""
    cmd = ["ansible", host, "-m", module, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    result = run(cmd, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"})
    try:
        data = json.loads(result.stdout)
    except ValueError as exc:
        raise AssertionError(f"no JSON from ansible:\n{result.stdout}\n{result.stderr}") from exc
    hosts = data["plays"][0]["tasks"][0]["hosts"]
    outcome = hosts[host]
    outcome["_stdout"] = result.stdout
    return outcome


@contextlib.contextmanager
def registry_unreachable_from(node: str):
    """The registry out of reach of one node only (its forwarder stopped), as a host cut off from it would be; the
    registry itself, and every other node and cell, keep it."""
    forwarder = node_sh(
        node, f"ps -o args= -C socat | grep -m1 'TCP-LISTEN:{REGISTRY.rsplit(':', 1)[1]}'"
    ).stdout.strip()
    node_sh(node, f"pkill -f 'TCP-LISTEN:{REGISTRY.rsplit(':', 1)[1]}'")
    try:
        yield
    finally:
        node_sh(node, f"nohup {forwarder} >/dev/null 2>&1 &")
