# SPDX-License-Identifier: GPL-3.0-or-later
"""make demo-adopt: a fleet started by hand becomes a managed one, losing nothing, on the embedded lab.

prod2 runs two real Open WebUI tenants the old way (lab/lab.sh legacy-fleet: docker run by tag, named volumes,
ports on 0.0.0.0, env on the command line, one tenant whose secret key the app generated inside its container,
hand-written nginx sites); users sign in and save data; adopt.yml in check mode writes nothing, then writes the
tenants, the vault-encrypted secrets and a report; the first deploy replaces each container on the digest it ran,
on its data, with its key (users still logged in); following the report, the hand-written sites go and the tenants
join the release pin: an upgrade across the database migrations and a rollback, like any other tenant.

Works in a copy of the lab inventory (.build/demo-adopt/inventory) where prod2 is a host pinned.release never
managed, and starts from fresh lab tenants each time, so it is safe to run again.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.steps import BOLD, GREEN, OFF, RED, Steps, lab, playbook, say  # noqa: E402
from tests.support.lab import node_sh, registry_digest  # noqa: E402
from tests.support.openwebui import OpenWebUI  # noqa: E402
from tests.support.workflow import LAB_VARS  # noqa: E402

REPO = "pinned/open-webui"
OLD, NEW = "0.12.0", "0.12.4"
NODE = "prod2"
LEGACY = ("acme", "hooli")
ADMIN = LAB_VARS["release_checklist_variables"]
WORK = ROOT / ".build/demo-adopt"
INVENTORY = WORK / "inventory"
VAULT = WORK / "vault-password"
LOG = WORK / "demo-adopt.log"
tokens: dict = {}


def fresh_inventory() -> None:
    """The lab inventory without prod2's declaration: a host pinned.release has never managed."""
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(ROOT / "inventories/lab", INVENTORY,
                    ignore=shutil.ignore_patterns("release_pin.yml", ".release_state", "*.md"))  # fmt: skip
    (INVENTORY / f"host_vars/{NODE}.yml").unlink()
    VAULT.write_text("demo-adopt-vault-password\n")
    VAULT.chmod(0o600)


def play(name: str, *args: str) -> list:
    return playbook(name, "-i", str(INVENTORY / "hosts.ini"), "--vault-password-file", str(VAULT), *args)


def app(name: str) -> OpenWebUI:
    return OpenWebUI(NODE, f"{name}.legacy.lab")


def users_save_data() -> None:
    for name in LEGACY:
        user = app(name)
        user.wait_ready()
        tokens[name] = user.admin_token(ADMIN["admin_email"], ADMIN["admin_password"])
        user.write_function(tokens[name], f"saved_before_adoption_{name}")


def users_still_logged_in(version: str, absent: str = "") -> str:
    for name in LEGACY:
        user = app(name)
        user.wait_ready()
        assert user.version() == version, f"{name}: runs {user.version()}, expected {version}"
        assert user.token_works(tokens[name]), f"{name}: its users were logged out (its secret key changed)"
        assert user.has_function(tokens[name], f"saved_before_adoption_{name}"), f"{name}: its data was lost"
        if absent:
            assert not user.has_function(tokens[name], f"{absent}_{name}"), f"{name}: {absent} should be gone"
    return ""


def nothing_written() -> str:
    assert not (INVENTORY / f"host_vars/{NODE}").exists(), "check mode wrote the inventory"
    assert not (INVENTORY / ".release_state/adoption").exists(), "check mode wrote a report"
    return ""


def managed_on_loopback() -> str:
    for name in LEGACY:
        state = json.loads(node_sh(NODE, f"docker inspect openwebui-legacy-{name}").stdout)[0]
        binding = state["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"]
        assert binding == "127.0.0.1", f"openwebui-legacy-{name} publishes on {binding}"
    assert node_sh(NODE, "docker ps -aq --filter name=^legacy-").stdout.strip() == "", "a hand-started one is left"
    volumes = set(node_sh(NODE, "docker volume ls -q").stdout.split())
    assert {f"legacy-{name}-data" for name in LEGACY} <= volumes, "an old volume was deleted"
    return ""


def follow_the_report() -> str:
    """What the report leaves to the operator: delete the hand-written sites, let the tenants follow the pin."""
    node_sh(NODE, "rm /etc/nginx/conf.d/legacy-*.conf && nginx -t 2>/dev/null && nginx -s reload")
    declared = INVENTORY / f"host_vars/{NODE}/release_tenants.yml"
    text = declared.read_text()
    lines = [line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("image:")]
    declared.write_text("".join(lines))
    return ""


def write_after_upgrade() -> str:
    for name in LEGACY:
        app(name).write_function(tokens[name], f"after_the_upgrade_{name}")
    return ""


def main() -> None:
    fresh_inventory()
    step = Steps(LOG).run
    old = registry_digest(OLD, REPO)
    print(f"{BOLD}pinned.release adoption demo{OFF}: a fleet of the real Open WebUI started by hand on {NODE} becomes "
          f"a managed one (full log: {LOG})\n")  # fmt: skip
    step("fresh lab tenants (lab/lab.sh reset-tenants)", lab("reset-tenants"))
    step(f"legacy fleet on {NODE}: docker run {OLD} by tag, volumes, 0.0.0.0 ports", lab("legacy-fleet", NODE))
    step("users sign in and save data on both legacy tenants", action=users_save_data)
    step("adopt.yml --check: the plan, nothing written", play("adopt.yml", "-l", NODE, "--check"))
    step("check mode wrote nothing", action=nothing_written)
    step("adopt.yml: tenants, vault-encrypted secrets, a report", play("adopt.yml", "-l", NODE))
    report = INVENTORY / f".release_state/adoption/{NODE}.md"
    say(f"wrote {INVENTORY.relative_to(ROOT)}/host_vars/{NODE}/release_tenants.yml, adopted_secrets.yml (encrypted)")
    for line in report.read_text().splitlines():
        if "session key read from the file" in line or "moves from 0.0.0.0" in line:
            say(line.lstrip("- "))
    step(f":release -> {OLD}", lab("release-tag", OLD))
    step("deploy.yml -l test: the candidate and its checklist", play("deploy.yml", "-l", "test"))
    step("promote.yml", play("promote.yml", "-e", "reason='demo-adopt: first pin'"))
    step(f"deploy.yml -l {NODE}: the first deploy replaces the legacy containers", play("deploy.yml", "-l", NODE))
    step(f"same digest ({old[:19]}), users still logged in, data there", action=lambda: users_still_logged_in(OLD))
    step("managed containers on loopback, legacy ones gone, volumes kept", action=managed_on_loopback)
    step("as the report says: delete the hand-written sites, follow the pin", action=follow_the_report)
    step(f":release -> {NEW} (two database migrations)", lab("release-tag", NEW))
    step("deploy.yml -l test", play("deploy.yml", "-l", "test"))
    step("promote.yml", play("promote.yml", "-e", f"reason='demo-adopt: {NEW}'"))
    step(f"deploy.yml -l {NODE}: the adopted tenants upgrade like any other", play("deploy.yml", "-l", NODE))
    step("users still logged in after the upgrade, data there", action=lambda: users_still_logged_in(NEW))
    step("users save data after the upgrade", action=write_after_upgrade)
    step(f"rollback.yml -l {NODE}: back to {OLD} across the migration",
         play("rollback.yml", "-l", NODE, "-e", f"reason='demo-adopt: {NEW} rejected'"))  # fmt: skip
    step("users still logged in, data from before the upgrade",
         action=lambda: users_still_logged_in(OLD, absent="after_the_upgrade"))  # fmt: skip
    print(f"\n{GREEN}adoption demo complete{OFF}: the report is {report}")


if __name__ == "__main__":
    try:
        main()
    except (OSError, KeyboardInterrupt) as exc:
        sys.exit(
            f"{RED}demo-adopt stopped{OFF}: {type(exc).__name__}: {exc} (see {LOG}; make lab-status shows the lab)"
        )
