# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive the playbooks against the lab from a private copy of the lab inventory, and look at the nodes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.lab import (
    CELL_INVENTORY,
    FLEET_INVENTORY,
    NODES,
    ROOT,
    lab_script,
    node_sh,
    read_topology,
    registry_digest,
)


def host_vars_file(node: str, inventory: Path = CELL_INVENTORY) -> Path:
    """A node's host_vars: this checkout's lab inventory has it, or lab/lab.sh wrote it for a node of the fleet."""
    own = ROOT / f"inventories/lab/host_vars/{node}.yml"
    return own if own.exists() else inventory.parent / f"host_vars/{node}.yml"


TENANTS = {node: yaml.safe_load(host_vars_file(node).read_text())["release_tenants"] for node in NODES}
LAB_VARS = yaml.safe_load((ROOT / "inventories/lab/group_vars/all/release.yml").read_text())
# Every secret of the lab: the tenants' keys and the test admin's password.
SECRETS = sorted(
    [v for tenants in TENANTS.values() for t in tenants for v in (t.get("secrets") or {}).values()]
    + [LAB_VARS["release_checklist_variables"]["admin_password"]]
)
# The lab's two apps (inventories/lab, PINNED_LAB_APP): the busybox stand-in and the real Open WebUI.
APP_REPOSITORIES = {app: entry["repository"] for app, entry in LAB_VARS["lab_apps"].items()}
PRODUCTION = ["prod1", "prod2"]


@dataclass
class Run:
    args: list
    returncode: int
    output: str

    @property
    def text(self) -> str:
        """The output with white space collapsed: the YAML callback wraps long messages."""
        return " ".join(self.output.split())

    def recap(self) -> dict:
        """{host: {ok, changed, failed, ...}} from the PLAY RECAP (the last one wins)."""
        hosts = {}
        for line in self.output.splitlines():
            if " : ok=" in line:
                host, _sep, counts = line.partition(" : ")
                hosts[host.strip()] = {k: int(v) for k, v in (p.split("=") for p in counts.split())}
        return hosts

    def changed(self) -> int:
        return sum(h.get("changed", 0) for h in self.recap().values())


@dataclass
class Workspace:
    directory: Path
    runs: list = field(default_factory=list)
    app: str = "standin"
    hook: object = None  # a tests.support.receivers.WebhookReceiver the release steps notify, when the module asks
    cell: int | str | None = None  # the lab cell whose :release tag release() moves (None: this process's cell)
    nodes: dict = field(default_factory=dict)  # its hosts, when they are not this process's cell's (NODES)

    def told(self, event: str) -> list:
        """What the webhook was told of ``event`` (rollout, rollback, drift, candidate_tested, pin_changed), in order."""
        return [body for body in self.hook.bodies("/hook") if body["event"] == event]

    @property
    def inventory(self) -> Path:
        return self.directory / "hosts.ini"

    @property
    def pin_file(self) -> Path:
        return self.directory / "group_vars/production/release_pin.yml"

    @property
    def evidence_dir(self) -> Path:
        return self.directory / ".release_state/evidence"

    def env(self) -> dict:
        return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", PINNED_OPERATOR="pytest",
                    PINNED_LAB_APP=self.app)  # fmt: skip

    @property
    def repository(self) -> str:
        return APP_REPOSITORIES[self.app]

    def command(self, playbook: str, *args: str) -> list:
        return ["ansible-playbook", "-i", str(self.inventory), str(ROOT / playbook), *args]

    def play(self, playbook: str, *args: str, timeout: int = 900) -> Run:
        proc = subprocess.run(
            self.command(playbook, *args),
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        run = Run([playbook, *args], proc.returncode, proc.stdout + proc.stderr)
        self.runs.append(run)
        return run

    def play_report(self, playbook: str, *args: str, timeout: int = 900) -> tuple:
        """(Run, the ansible.posix.json report): every task's result and times, for whoever needs more than text."""
        env = dict(self.env(), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
        proc = subprocess.run(self.command(playbook, *args), cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
        run = Run([playbook, *args], proc.returncode, proc.stdout + proc.stderr)
        self.runs.append(run)
        return run, json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}

    def start(self, playbook: str, *args: str) -> subprocess.Popen:
        """A playbook in the background, in its own process group (so a test can kill it whole)."""
        log_path = self.directory / f"bg-{len(self.runs)}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                self.command(playbook, *args),
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc.log_path = log_path  # type: ignore[attr-defined]
        return proc

    def finish(self, proc: subprocess.Popen, timeout: int = 900) -> Run:
        proc.wait(timeout=timeout)
        run = Run(["background"], proc.returncode, proc.log_path.read_text())  # type: ignore[attr-defined]
        self.runs.append(run)
        return run

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def pin(self) -> dict:
        return yaml.safe_load(self.pin_file.read_text())

    def release(self, variant: str) -> str:
        """Move this app's :release to a variant (stand-in) or version (Open WebUI); its digest."""
        lab_script("release-tag", variant, cell=self.cell)
        return registry_digest(variant, self.repository.split("/", 1)[1])

    def cycle(self, variant: str, *extra: str) -> str:
        """:release -> variant, test, promote, production rollout (each with ``extra`` args); returns the digest."""
        digest = self.release(variant)
        for playbook, args in (
            ("playbooks/deploy.yml", ["-l", "test"]),
            ("playbooks/promote.yml", []),
            ("playbooks/deploy.yml", ["-l", "production"]),
        ):
            run = self.play(playbook, *args, *extra)
            assert run.returncode == 0, f"{playbook} {args} failed:\n{run.output[-4000:]}\n{diagnostics()}"
        return digest


def make_workspace(
    tmp_path: Path, app: str = "standin", inventory: Path = CELL_INVENTORY, cell: int | str | None = None
) -> Workspace:
    """A private copy of the lab inventory on this process's lab cell (or on ``inventory``, the hosts of ``cell``)."""
    directory = tmp_path / "inventory"
    shutil.copytree(
        ROOT / "inventories/lab", directory, ignore=shutil.ignore_patterns("release_pin.yml", ".release_state", "*.md")
    )
    shutil.copy(inventory, directory / "hosts.ini")  # the cell's hosts (their ports, its :release)
    for node in read_topology(inventory):  # and the tenants of the fleet's nodes this checkout does not have
        if not (directory / f"host_vars/{node}.yml").exists():
            shutil.copy(host_vars_file(node, inventory), directory / f"host_vars/{node}.yml")
    return Workspace(directory, app=app, cell=cell)


def ensure_fleet(production_nodes: int) -> None:
    """The lab's fleet with at least ``production_nodes`` production nodes (a larger one is left as it is)."""
    current = 0
    if FLEET_INVENTORY.exists():
        current = sum(1 for node in read_topology(FLEET_INVENTORY).values() if node.group == "production")
    lab_script("up", cell="fleet", env={"PINNED_LAB_PRODUCTION_NODES": str(max(production_nodes, current))})


def fleet_workspace(tmp_path: Path, production_nodes: int) -> Workspace:
    """A workspace on the fleet's test node and its first ``production_nodes`` production nodes (ensure_fleet first)."""
    space = make_workspace(tmp_path, inventory=FLEET_INVENTORY, cell="fleet")
    chosen = {f"prod{i}" for i in range(1, production_nodes + 1)}
    lines = [line for line in space.inventory.read_text().splitlines()
             if not line.startswith("prod") or line.split()[0] in chosen]  # fmt: skip
    space.inventory.write_text("\n".join(lines) + "\n")
    space.nodes = read_topology(space.inventory)
    found = sorted(n for n, node in space.nodes.items() if node.group == "production")
    assert found == sorted(chosen), f"the fleet has {found}, not prod1..prod{production_nodes}: ensure_fleet first"
    return space


def reset_nodes() -> None:
    """Remove the tenants' containers, data, locks and audit logs the tests made on the nodes."""
    lab_script("reset-tenants")


def tenant(node: str, name: str) -> dict:
    """What the node says about a tenant's container: digest label, running digest, health."""
    result = node_sh(node, f"docker inspect openwebui-{name}", check=False)
    if result.returncode != 0:
        return {"exists": False}
    data = json.loads(result.stdout)[0]
    image = json.loads(node_sh(node, f"docker image inspect {data['Image']}").stdout)[0]
    digests = [d.split("@")[1] for d in image.get("RepoDigests") or [] if d.split("@")[0] in APP_REPOSITORIES.values()]
    return {
        "exists": True,
        "digest": digests[0] if digests else None,
        "label": data["Config"]["Labels"].get("pinned.release.digest"),
        "status": data["State"]["Status"],
        "health": (data["State"].get("Health") or {}).get("Status"),
        "started_at": data["State"]["StartedAt"],
    }


def wait_healthy(node: str, name: str, timeout: int = 60) -> dict:
    deadline = time.monotonic() + timeout
    state = {}
    while time.monotonic() < deadline:
        state = tenant(node, name)
        if state.get("health") == "healthy":
            return state
        time.sleep(1)
    return state


def http(node: str, domain: str, path: str, data: str | None = None) -> str:
    """A request through the node's nginx with the tenant's Host header."""
    method = f"-X PUT --data {data!r}" if data is not None else ""
    return node_sh(node, f"curl -s -m 10 {method} -H 'Host: {domain}' http://127.0.0.1{path}").stdout


def write_sentinels(nodes, value: str) -> None:
    for node in nodes:
        for t in TENANTS[node]:
            assert "stored" in http(node, t["domain"], f"/api/kv/sentinel-{t['name']}", value)


def read_sentinel(node: str, t: dict) -> str:
    return http(node, t["domain"], f"/api/kv/sentinel-{t['name']}")


def audit_lines(node: str) -> list:
    text = node_sh(node, "cat /var/log/pinned-release/audit.jsonl 2>/dev/null || true").stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def diagnostics(nodes=tuple(NODES)) -> str:
    """What an operator needs when a test fails: containers, their last logs, the audit log."""
    parts = []
    for node in nodes:
        ps = node_sh(node, "docker ps -a --format '{{.Names}} {{.Status}} {{.Image}}'", check=False).stdout
        logs = node_sh(
            node,
            "for c in $(docker ps -aq --filter label=pinned.release.managed); do docker logs --tail 5 $c 2>&1; done",
            check=False,
        ).stdout
        audit = node_sh(node, "tail -5 /var/log/pinned-release/audit.jsonl 2>/dev/null", check=False).stdout
        parts.append(f"--- {node}\n{ps}\nlogs:\n{logs}\naudit:\n{audit}")
    return "\n".join(parts)


def assert_no_secret_in(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"secret value(s) in output: {len(leaked)}"
