# SPDX-License-Identifier: GPL-3.0-or-later
"""Signed releases on the lab (issue #29): release_signature in inventory, a candidate in the signing registry.

An unsigned candidate is refused by the test deploy before any host changes; a signed one goes test -> promote with
its signer in the evidence and the pin; promote refuses evidence without a verified signature when it is required.
The tests run in order and build on each other's state. The stand-in app, copied and signed by lab/lab.sh sign.
"""

from __future__ import annotations

import json
import os
import uuid

import yaml

from tests.support.lab import LAB_HOME, lab_script, registry_digest, signing_credentials
from tests.support.registries import copy_image
from tests.support.workflow import audit_lines, diagnostics

SIGNING = "127.0.0.1:" + os.environ.get("PINNED_LAB_SIGNING_REGISTRY_PORT", "5005")
RUN = f"signed-release/{uuid.uuid4().hex[:12]}"
ISSUER = "https://token.actions.githubusercontent.com"
LAB_SUBJECT = "https://github.com/pinned-release/lab/.github/workflows/release.yml@refs/heads/main"


def prepare_workspace(ws):
    """The app in the signing registry: v1 signed as the lab's release workflow, v2 copied without a signature."""
    user, password = signing_credentials()
    lab_script("sign", "pinned/openwebui:v1", "--to", f"{RUN}/app")
    copy_image("v2", f"{SIGNING}/{RUN}/app:v2", ["--dest-tls-verify=false", "--dest-creds", f"{user}:{password}"])
    lab_script("signing-access")  # the cell's nodes reach it on 127.0.0.1 too, logged in
    (ws.directory / "group_vars/all/signature.yml").write_text(
        yaml.safe_dump({
            "release_app_repository": f"{SIGNING}/{RUN}/app",
            "release_candidate": f"{SIGNING}/{RUN}/app:v1",
            "release_registry": {"username": user, "password": password},
            "release_signature": {
                "required": True,
                "identities": [{"issuer": ISSUER, "subject_regexp": r"https://github\.com/pinned-release/.*"}],
                "trusted_root": str(LAB_HOME / "sigstore/trusted_root.json"),
            },
        })
    )  # fmt: skip


def given_password(ws) -> str:
    """The signing registry's password as prepare_workspace gave it to the release steps."""
    return yaml.safe_load((ws.directory / "group_vars/all/signature.yml").read_text())["release_registry"]["password"]


def record_of(ws, digest: str) -> dict:
    return json.loads((ws.evidence_dir / f"{digest.replace(':', '-')}.json").read_text())


def test_an_unsigned_candidate_is_refused_before_any_host_changes(ws):
    before = audit_lines("test1")
    run = ws.play("playbooks/deploy.yml", "-l", "test", "-e", f"release_candidate={SIGNING}/{RUN}/app:v2")
    assert run.returncode != 0
    assert f"{SIGNING}/{RUN}/app@sha256:" in run.text, run.output[-3000:]
    assert "has no Sigstore signature" in run.text, run.output[-3000:]
    assert audit_lines("test1") == before, "a host changed for an unsigned candidate"
    assert not ws.evidence_dir.exists() or not list(ws.evidence_dir.iterdir()), "evidence written for it"
    assert given_password(ws) not in run.output


def test_a_signed_candidate_is_tested_with_its_signer_in_the_evidence(ws):
    v1 = registry_digest("v1")
    run = ws.play("playbooks/deploy.yml", "-l", "test")
    assert run.returncode == 0, run.output[-3000:] + diagnostics(["test1"])
    assert f"signed by {LAB_SUBJECT} ({ISSUER})" in run.text
    signature = record_of(ws, v1)["signature"]
    assert signature["verified"] is True
    assert (signature["issuer"], signature["subject"]) == (ISSUER, LAB_SUBJECT)
    assert signature["bundle_digest"].startswith("sha256:")
    assert given_password(ws) not in run.output


def test_promote_refuses_evidence_without_a_verified_signature_when_required(ws):
    v1 = registry_digest("v1")
    path = ws.evidence_dir / f"{v1.replace(':', '-')}.json"
    signed = path.read_text()
    # what a test deploy without release_signature records
    path.write_text(json.dumps({**json.loads(signed), "signature": {"verified": False, "reason": "not checked"}}))
    try:
        run = ws.play("playbooks/promote.yml")
    finally:
        path.write_text(signed)
    assert run.returncode != 0
    assert (
        f"evidence {path} has no verified signature (not checked), and release_signature.required is true" in run.text
    )
    assert not ws.pin_file.exists(), "a pin was written"


def test_promote_pins_the_signed_candidate_with_its_signer(ws):
    v1 = registry_digest("v1")
    run = ws.play("playbooks/promote.yml")
    assert run.returncode == 0, run.output[-3000:]
    pin = ws.pin()["release_pin"]
    assert (pin["repository"], pin["digest"]) == (f"{SIGNING}/{RUN}/app", v1)
    assert pin["evidence"]["signature"] == record_of(ws, v1)["signature"]
    assert pin["evidence"]["signature"]["subject"] == LAB_SUBJECT
