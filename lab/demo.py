# SPDX-License-Identifier: GPL-3.0-or-later
"""make demo: a whole release cycle of the real Open WebUI on the embedded lab, step by step.

Every release runs from the lab's signing registry under release_signature: the lab's release workflow signs each
build (Sigstore, offline) and the test deploy verifies the signature before anything runs. 0.12.0 -> test -> promote
-> production, its signer in the pin; users sign in and save data; a signed 0.12.4 build whose pipe save is broken
is caught on test and cannot be promoted; an unsigned copy of 0.12.4 is refused before any host changes; the signed
0.12.4 (migrates the database) -> test -> promote -> production, users still logged in; someone recreates a tenant
by hand without its secret key (everyone logged out), drift reports it, remediation puts it back; emergency rollback
to 0.12.0 across the migration (the pre-upgrade snapshot); drift clean; a table of every tenant.

Starts from fresh lab tenants each time (lab/lab.sh reset-tenants), so it is safe to run again.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.steps import BOLD, GREEN, OFF, RED, Steps, lab, lines_with, playbook, say  # noqa: E402
from tests.support.lab import NODES, node_sh, registry_digest  # noqa: E402
from tests.support.openwebui import OpenWebUI  # noqa: E402
from tests.support.workflow import LAB_VARS, TENANTS  # noqa: E402

REPO = "pinned/open-webui"
OLD, NEW = "0.12.0", "0.12.4"
BROKEN = f"{NEW}-pipe-save-broken"
PRODUCTION = tuple(name for name, node in NODES.items() if node.group == "production")
SIGNING = "127.0.0.1:5005"  # lab/lab.sh's signing registry (basic auth)
SIGNED_REPO, UNSIGNED_REPO = "demo/open-webui", "demo/open-webui-unsigned"
HAND_MADE = (PRODUCTION[-1], TENANTS[PRODUCTION[-1]][-1])  # the tenant someone recreates by hand
ADMIN = LAB_VARS["release_checklist_variables"]
LOG = ROOT / "inventories/lab/.release_state/demo.log"
tokens: dict = {}


def app(node: str, tenant: dict) -> OpenWebUI:
    return OpenWebUI(node, tenant["domain"])


def users_save_data() -> None:
    for node in PRODUCTION:
        for tenant in TENANTS[node]:
            user = app(node, tenant)
            tokens[tenant["name"]] = user.admin_token(ADMIN["admin_email"], ADMIN["admin_password"])
            user.write_function(tokens[tenant["name"]], "saved_before_the_upgrade")


def users_still_logged_in() -> str:
    for node in PRODUCTION:
        for tenant in TENANTS[node]:
            user = app(node, tenant)
            assert user.token_works(tokens[tenant["name"]]), f"{tenant['name']}: its users were logged out"
            assert user.has_function(tokens[tenant["name"]], "saved_before_the_upgrade"), f"{tenant['name']}: data lost"
    return ""


def recreate_without_secret_key() -> None:
    node, tenant = HAND_MADE
    base = f"/opt/openwebui/{tenant['name']}"
    node_sh(node, f"docker rm -f openwebui-{tenant['name']} >/dev/null && docker run -d --name openwebui-{tenant['name']} "
                  f"--restart unless-stopped -p 127.0.0.1:{tenant['port']}:8080 -v {base}/data:/app/backend/data "
                  f"--env-file {base}/app.env --label pinned.release.managed=true {pinned()['image']}"
                  " >/dev/null")  # fmt: skip
    user = app(node, tenant)
    user.wait_ready()
    assert not user.token_works(tokens[tenant["name"]]), "expected the hand-made container to log its users out"


POLICY = ("-e", f"@{ROOT / 'lab/demo-signature.yml'}")  # release_signature, and the signing registry's credentials


def published(step, version: str, title: str) -> tuple:
    """The lab's release workflow publishes ``version``: copied into the signing registry and signed (Sigstore,
    offline). The -e arguments of a release step on it: the signature policy, the signed build as the candidate."""
    signed = step(title, lab("sign", f"{REPO}:{version}", "--to", SIGNED_REPO))
    signer = re.search(r"signed (\S+@sha256:\w{12})\w* as (\S+)", signed)
    if signer:
        say(f"{signer.group(1)}... signed as {signer.group(2)}")
    return (*POLICY, "-e", f"release_candidate={SIGNING}/{SIGNED_REPO}:{version}")


def unsigned_refused(step) -> None:
    """An unsigned copy of the good build is refused under release_signature before any host changes."""
    step(
        f"an unsigned copy of {NEW} in the signing registry",
        lab("sign", f"{REPO}:{NEW}", "--to", UNSIGNED_REPO, "--unsigned"),
    )
    refused = step(
        "deploy.yml -l test refuses the unsigned copy (release_signature)",
        playbook("deploy.yml", "-l", "test", *POLICY, "-e", f"release_candidate={SIGNING}/{UNSIGNED_REPO}:{NEW}"),
        expect_failure=True,
    )
    reason = re.search(r"\S+ has no Sigstore signature", " ".join(refused.split()))
    if reason:
        say(reason.group(0) + ": refused before any host changed")


def pinned() -> dict:
    """The production pin, as promote.yml wrote it."""
    return yaml.safe_load((ROOT / "inventories/lab/group_vars/production/release_pin.yml").read_text())["release_pin"]


def pinned_signer() -> str:
    """Who signed what the pin names, as the pin file records it."""
    pin = pinned()
    signature = (pin.get("evidence") or {}).get("signature") or {}
    if not signature.get("verified"):
        return f"the pin {pin['image'][:80]} records no verified signature ({signature.get('reason', 'none')})"
    return f"pinned {pin['image'][:72]}..., signed by {signature['subject']} ({signature['issuer']})"


def main() -> None:
    step = Steps(LOG).run
    old, new = registry_digest(OLD, REPO), registry_digest(NEW, REPO)
    print(f"{BOLD}pinned.release demo{OFF}: the real Open WebUI {OLD} ({old[:19]}) and {NEW} ({new[:19]}), "
          f"built from PyPI by the lab (full log: {LOG})\n")  # fmt: skip
    for state in ("group_vars/production/release_pin.yml", "group_vars/production/DOCKER_IMAGE_PIN.md",
                  "group_vars/production/ROLLBACK_INCIDENTS.md"):  # fmt: skip
        (ROOT / "inventories/lab" / state).unlink(missing_ok=True)
    step("fresh lab tenants and pin (lab/lab.sh reset-tenants)", lab("reset-tenants"))
    step("the nodes reach the signing registry (lab/lab.sh signing-access)", lab("signing-access"))
    first = published(step, OLD, f"the release workflow signs {OLD} (lab/lab.sh sign, Sigstore)")
    step(
        "deploy.yml -l test: signature, then the candidate and the checklist",
        playbook("deploy.yml", "-l", "test", *first),
    )
    step(
        "promote.yml: pin the tested digest",
        playbook("promote.yml", *first, "-e", f"reason='demo: first release {OLD}'"),
    )
    say(pinned_signer())
    step(
        "deploy.yml -l production: canary host first, health-gated", playbook("deploy.yml", "-l", "production", *first)
    )
    step("users sign in and save data on every production tenant", action=users_save_data)

    broken = published(step, BROKEN, f"the release workflow signs {BROKEN}")
    caught = step(
        "deploy.yml -l test: the checklist catches it (signed, yet broken)",
        playbook("deploy.yml", "-l", "test", *broken),
        expect_failure=True,
    )
    failure = re.search(r"\w+: save the pipe again \([^)]*\): [^;]*", " ".join(caught.split()))
    if failure:
        say(failure.group(0))
    refused = step("promote.yml refuses the failed candidate", playbook("promote.yml", *broken), expect_failure=True)
    verdict = re.search(
        r"says the checklist failed for sha256:\w{12}\w*: \d+ of \d+ checks fail", " ".join(refused.split())
    )
    if verdict:
        say(verdict.group(0))

    unsigned_refused(step)
    good = published(step, NEW, f"the release workflow signs {NEW} (two database migrations)")
    step("deploy.yml -l test: a login and data from before carried over", playbook("deploy.yml", "-l", "test", *good))
    step("promote.yml", playbook("promote.yml", *good, "-e", f"reason='demo: {NEW}'"))
    say(pinned_signer())
    step(
        "deploy.yml -l production (snapshot of each tenant before it changes)",
        playbook("deploy.yml", "-l", "production", *good),
    )
    step("users are still logged in, their data is there", action=users_still_logged_in)
    step("drift.yml: the fleet is on the pin", playbook("drift.yml"))

    step(
        f"someone recreates {HAND_MADE[1]['name']} by hand, without its secret key", action=recreate_without_secret_key
    )
    drift = step("drift.yml reports it (users were logged out)", playbook("drift.yml"), expect_failure=True)
    for line in lines_with(drift, f"{HAND_MADE[0]} openwebui-{HAND_MADE[1]['name']}")[:3]:
        say(line)
    step("drift.yml -e remediate=true puts it back", playbook("drift.yml", "-e", "remediate=true"))
    step("users are logged in again", action=users_still_logged_in)

    rollback = step(f"rollback.yml -l production: emergency rollback to {OLD}",
                    playbook("rollback.yml", "-l", "production", *POLICY, "-e", f"reason='demo: {NEW} rejected'"))  # fmt: skip
    for line in lines_with(rollback, ": restored ")[:4]:
        say(line)
    step("drift.yml: the fleet is clean again", playbook("drift.yml"))

    print(
        f"\n{BOLD}{'host':<7} {'tenant':<10} {'version':<8} {'health':<9} {'login from before':<18} data from before{OFF}"
    )
    intact_all = True
    for node in NODES:
        for tenant in TENANTS[node]:
            user = app(node, tenant)
            status, version = user.call("GET", "/api/version")
            health = "ok" if user.call("GET", "/health")[0] == 200 else "DOWN"
            if node in PRODUCTION:
                login = user.token_works(tokens[tenant["name"]])
                data = user.has_function(tokens[tenant["name"]], "saved_before_the_upgrade")
                intact_all &= login and data
                login_text, data_text = ("yes" if login else "NO"), ("yes" if data else "NO")
            else:
                login_text, data_text = "(test host)", ""
            version_text = version.get("version", "?") if status == 200 else "-"
            print(f"{node:<7} {tenant['name']:<10} {version_text:<8} {health:<9} {login_text:<18} {data_text}")
    print(
        f"\nproduction pin: {OLD} ({old[:19]}), incident recorded in inventories/lab/group_vars/production/ROLLBACK_INCIDENTS.md"
    )
    page = ROOT / "inventories/lab/.release_state/fleet/index.html"
    if page.exists():
        print(f"the fleet page: {page} (open it in a browser)")
    if not intact_all:
        print(f"{RED}a login or data was lost{OFF}")
        sys.exit(1)
    print(f"{GREEN}demo complete{OFF}")


if __name__ == "__main__":
    try:
        main()
    except (OSError, KeyboardInterrupt) as exc:
        sys.exit(f"demo stopped: {type(exc).__name__}: {exc} (see {LOG}; make lab-status shows the lab)")
