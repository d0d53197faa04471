# SPDX-License-Identifier: GPL-3.0-or-later
"""make demo: a whole release cycle on the embedded lab, step by step.

:release=v1 -> test -> promote -> production; :release=v2 (migrates data) -> test -> promote ->
production; drift clean; someone starts an old digest by hand on prod2; drift reports it;
emergency rollback to v1 (with the pre-upgrade data snapshot); drift clean; a summary table.

Starts from fresh lab tenants each time (lab/lab.sh reset-tenants), so it is safe to run again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB_HOME = Path(os.environ.get("PINNED_LAB_HOME", "/var/lib/pinned-release-lab"))
REPO = "127.0.0.1:5000/pinned/openwebui"
NODES = {"test1": 2201, "prod1": 2202, "prod2": 2203}
PRODUCTION = ("prod1", "prod2")
LOG = ROOT / "inventories/lab/.release_state/demo.log"
BOLD, GREEN, RED, DIM, OFF = (
    ("\033[1m", "\033[32m", "\033[31m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("",) * 5
)
step_number = 0


def short(digest: str | None) -> str:
    return (digest or "-")[:19]


def ssh(node: str, command: str) -> str:
    cmd = ["ssh", "-q", "-i", str(LAB_HOME / "ssh/id_ed25519"), "-o", f"UserKnownHostsFile={LAB_HOME / 'ssh/known_hosts'}",
           "-o", "BatchMode=yes", "-p", str(NODES[node]), "root@127.0.0.1", command]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def digest_of(tag: str) -> str:
    request = urllib.request.Request(
        f"http://{REPO.split('/', maxsplit=1)[0]}/v2/pinned/openwebui/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the lab registry, http only
        return response.headers["Docker-Content-Digest"]


def tenants(node: str) -> list:
    import yaml

    return yaml.safe_load((ROOT / f"inventories/lab/host_vars/{node}.yml").read_text())["release_tenants"]


def step(title: str, command: list | None = None, expect_failure: bool = False, action=None) -> str:
    """Run one step, print one line with its outcome and time; stop the demo if it misbehaves."""
    global step_number
    step_number += 1
    print(f"{BOLD}[{step_number:2}]{OFF} {title[:70]:<70}", end="", flush=True)
    started = time.monotonic()
    output, ok = "", True
    if command:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", PINNED_OPERATOR="demo")
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        output = proc.stdout + proc.stderr
        with LOG.open("a") as log:
            log.write(f"\n===== [{step_number}] {title}\n$ {' '.join(command)}\n{output}")
        ok = (proc.returncode != 0) if expect_failure else (proc.returncode == 0)
    if action:
        output = action() or ""
    elapsed = time.monotonic() - started
    verdict = ("failed, as expected" if expect_failure else "ok") if ok else "UNEXPECTED"
    print(f"{GREEN if ok else RED}{verdict:>20}{OFF} {DIM}{elapsed:5.1f}s{OFF}")
    if not ok:
        print(output[-3000:])
        print(f"{RED}demo stopped: see {LOG}{OFF}")
        sys.exit(1)
    return output


def playbook(name: str, *args: str) -> list:
    return [str(ROOT / ".venv/bin/ansible-playbook"), f"playbooks/{name}", *args]


def lines_matching(output: str, marker: str) -> list:
    text = " ".join(output.split())
    return [part.strip(" -'") for part in text.split(" - '") if marker in part]


def main() -> None:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.write_text("")
    v1, v2 = digest_of("v1"), digest_of("v2")
    print(f"{BOLD}pinned.release demo{OFF}: v1 = {short(v1)}, v2 = {short(v2)} (full log: {LOG})\n")

    for state in ("group_vars/production/release_pin.yml", "group_vars/production/DOCKER_IMAGE_PIN.md",
                  "group_vars/production/ROLLBACK_INCIDENTS.md"):  # fmt: skip
        (ROOT / "inventories/lab" / state).unlink(missing_ok=True)
    step("fresh lab tenants and pin (lab/lab.sh reset-tenants)", [str(ROOT / "lab/lab.sh"), "reset-tenants"])
    step(f":release -> v1 ({short(v1)})", [str(ROOT / "lab/lab.sh"), "release-tag", "v1"])
    step("deploy.yml -l test: deploy the candidate, run the checklist", playbook("deploy.yml", "-l", "test"))
    step("promote.yml: pin the tested digest", playbook("promote.yml", "-e", "reason='demo: first release'"))
    step("deploy.yml -l production: rolling, health-gated", playbook("deploy.yml", "-l", "production"))

    def write_sentinels():
        for node in PRODUCTION:
            for t in tenants(node):
                ssh(
                    node,
                    f"curl -s -X PUT --data demo-data-{t['name']} -H 'Host: {t['domain']}' http://127.0.0.1/api/kv/demo",
                )

    step("users write data into every production tenant", action=write_sentinels)
    step(
        f":release -> v2 ({short(v2)}, migrates the data schema 1 -> 2)",
        [str(ROOT / "lab/lab.sh"), "release-tag", "v2"],
    )
    step("deploy.yml -l test", playbook("deploy.yml", "-l", "test"))
    step("promote.yml", playbook("promote.yml", "-e", "reason='demo: v2'"))
    step("deploy.yml -l production (snapshot before each tenant)", playbook("deploy.yml", "-l", "production"))
    step("drift.yml: fleet on the pin", playbook("drift.yml"))

    def start_old_by_hand():
        base = "/opt/openwebui/umbrella"
        ssh("prod2", f"docker rm -f openwebui-umbrella >/dev/null; docker run -d --name openwebui-umbrella --restart unless-stopped "
                     f"-p 127.0.0.1:3002:8080 -v {base}/data:/app/backend/data --env-file {base}/app.env --env-file {base}/secrets.env "
                     f"--label pinned.release.managed=true {REPO}@{v1} >/dev/null")  # fmt: skip

    step(f"someone starts the old digest by hand on prod2 ({short(v1)})", action=start_old_by_hand)
    time.sleep(3)
    drift = step("drift.yml reports it", playbook("drift.yml"), expect_failure=True)
    for line in lines_matching(drift, "prod2 openwebui-umbrella")[:3]:
        print(f"       {DIM}{line[:150]}{OFF}")
    rollback = step(
        "rollback.yml -l production: emergency rollback to v1",
        playbook("rollback.yml", "-l", "production", "-e", "reason='demo: v2 rejected'"),
    )
    text = " ".join(rollback.split())
    for match in re.finditer(
        r"msg: '?(\w+): restored (\S+) \(taken (\S+), before the upgrade to \S+\); ([^']*?)'", text
    ):
        tenant_name, snapshot, taken, lost = match.groups()
        print(f"       {DIM}{tenant_name}: restored {Path(snapshot).name} (taken {taken}); {lost[:90]}{OFF}")
    step("drift.yml: fleet clean again", playbook("drift.yml"))

    print(f"\n{BOLD}{'host':<7} {'tenant':<10} {'digest':<21} {'health':<9} data intact{OFF}")
    intact_all = True
    for node in ("test1", *PRODUCTION):
        for t in tenants(node):
            state = json.loads(ssh(node, f"docker inspect openwebui-{t['name']}") or "[{}]")[0]
            labels = (state.get("Config") or {}).get("Labels") or {}
            health = ((state.get("State") or {}).get("Health") or {}).get("Status", "-")
            if node in PRODUCTION:
                data = ssh(node, f"curl -s -H 'Host: {t['domain']}' http://127.0.0.1/api/kv/demo")
                intact = data == f"demo-data-{t['name']}"
                intact_all &= intact
                intact_text = "yes" if intact else f"NO ({data[:30]})"
            else:
                intact_text = "(test host)"
            print(
                f"{node:<7} {t['name']:<10} {short(labels.get('pinned.release.digest')):<21} {health:<9} {intact_text}"
            )
    print(
        f"\nproduction pin: {short(v1)} (v1), incident recorded in inventories/lab/group_vars/production/ROLLBACK_INCIDENTS.md"
    )
    if not intact_all:
        print(f"{RED}data was lost{OFF}")
        sys.exit(1)
    print(f"{GREEN}demo complete{OFF}")


if __name__ == "__main__":
    main()
