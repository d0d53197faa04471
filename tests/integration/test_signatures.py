# SPDX-License-Identifier: GPL-3.0-or-later
"""Sigstore signatures made by the real tooling (lab/lab.sh sign: @sigstore/sign, @sigstore/mock, @sigstore/oci),
found in a registry with basic auth and verified offline by resolve_digest's verify_signature (sigstore-python).

Signed once per module, each image in its own repository of this run, so no other run's signatures count.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid

import pytest

from ansible_collections.pinned.release.plugins.module_utils._reference import parse_reference
from ansible_collections.pinned.release.plugins.module_utils._registry import RegistryClient
from ansible_collections.pinned.release.plugins.module_utils._signatures import (
    SignatureError,
    SignaturePolicyError,
    load_trusted_root,
    parse_policy,
    verify_signature,
)
from tests.support.lab import LAB_HOME, ROOT, ansible_module, lab_script, registry_digest, signing_credentials
from tests.support.registries import BehaviourProxy, copy_image, free_port

pytestmark = pytest.mark.lab

SIGNING = "127.0.0.1:" + os.environ.get("PINNED_LAB_SIGNING_REGISTRY_PORT", "5005")
TRUSTED_ROOT = str(LAB_HOME / "sigstore/trusted_root.json")
ISSUER = "https://token.actions.githubusercontent.com"
LAB_SUBJECT = "https://github.com/pinned-release/lab/.github/workflows/release.yml@refs/heads/main"
INTRUDER = "https://github.com/intruder/fork/.github/workflows/release.yml@refs/heads/main"
POLICY = {"identities": [{"issuer": ISSUER, "subject_regexp": r"https://github\.com/pinned-release/.*"}]}


class Signed:
    """The images of this module's run in the signing registry, by what their signatures are."""

    def __init__(self, tmp):
        self.run = f"sigtest/{uuid.uuid4().hex[:12]}"
        self.tmp = tmp
        self.user, self.password = signing_credentials()
        self.v1 = registry_digest("v1")
        self.v2 = registry_digest("v2")

    def image(self, name: str, registry: str = SIGNING) -> str:
        return f"{registry}/{self.run}/{name}:v1" if name != "replayed" else f"{registry}/{self.run}/{name}:v2"

    def sign(self, name: str, tag: str = "v1", *args: str) -> None:
        lab_script("sign", f"pinned/openwebui:{tag}", "--to", f"{self.run}/{name}", *args)

    def copy(self, name: str) -> None:
        copy_image(
            "v1",
            f"{SIGNING}/{self.run}/{name}:v1",
            ["--dest-tls-verify=false", "--dest-creds", f"{self.user}:{self.password}"],
        )

    def client(self, **kwargs) -> RegistryClient:
        return RegistryClient(username=self.user, password=self.password, retries=0, **kwargs)

    def verify(self, name: str, registry: str = SIGNING, policy: dict | None = None, digest: str | None = None):
        ref = parse_reference(self.image(name, registry))
        with self.client() as client:
            digest = digest or client.resolve(ref).digest
            return verify_signature(
                client, ref, digest, parse_policy({**POLICY, "trusted_root": TRUSTED_ROOT, **(policy or {})})
            )


@pytest.fixture(scope="module")
def signed(tmp_path_factory, lab):
    tmp = tmp_path_factory.mktemp("signatures")
    images = Signed(tmp)
    bundle = tmp / "good.json"
    images.sign("good", "v1", "--bundle-out", str(bundle))
    images.sign("intruder", "v1", "--subject", INTRUDER)
    images.sign("replayed", "v2", "--over", images.v1)  # a statement over v1, attached to v2
    images.copy("unsigned")
    images.copy("tampered")  # the good bundle with its statement changed after signing
    envelope = json.loads(bundle.read_text())
    statement = json.loads(base64.b64decode(envelope["dsseEnvelope"]["payload"]))
    statement["predicate"] = {"note": "changed after signing"}
    envelope["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (tmp / "tampered.json").write_text(json.dumps(envelope))
    lab_script("attach", f"{images.run}/tampered@{images.v1}", str(tmp / "tampered.json"))
    # Another Sigstore instance: the same tooling with keys of its own gives a trusted root that is not the lab's.
    other = tmp / "other-instance"
    subprocess.run(
        ["node", str(ROOT / "lab/sigstore/sign.js"), "--keys", str(other), "--digest", images.v1, "--name", "x",
         "--subject", LAB_SUBJECT, "--issuer", ISSUER, "--out", str(tmp / "other.json")],
        check=True, capture_output=True, env=dict(os.environ, NODE_PATH=str(LAB_HOME / "sigstore/node/node_modules")),
    )  # fmt: skip
    images.other_root = str(other / "trusted_root.json")
    return images


def test_a_signed_image_resolves_with_its_signer_through_ansible(signed):
    result = ansible_module(
        "pinned.release.resolve_digest",
        {"image": signed.image("good"), "username": signed.user, "password": signed.password,
         "verify_signature": {**POLICY, "trusted_root": TRUSTED_ROOT}},
    )  # fmt: skip
    assert not result.get("failed"), result.get("msg")
    assert result["digest"] == signed.v1
    assert result["signature"] == {
        "verified": True,
        "issuer": ISSUER,
        "subject": LAB_SUBJECT,
        "found_by": f"tag {signed.v1.replace(':', '-')}",
        "bundle_digest": result["signature"]["bundle_digest"],
    }
    assert signed.password not in result["_stdout"].replace('"password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"', "")


def test_an_unsigned_image_is_refused_through_ansible_in_one_line(signed):
    result = ansible_module(
        "pinned.release.resolve_digest",
        {"image": signed.image("unsigned"), "username": signed.user, "password": signed.password,
         "verify_signature": {**POLICY, "trusted_root": TRUSTED_ROOT}},
    )  # fmt: skip
    assert result.get("failed") is True
    message = result["msg"]
    assert "\n" not in message
    assert message.startswith(f"{SIGNING}/{signed.run}/unsigned@{signed.v1} has no Sigstore signature"), message


def test_many_images_not_required_each_get_their_verdict(signed):
    """The module's code in process (its Ansible glue is proved above): images in one call, required false."""
    from ansible_collections.pinned.release.plugins.modules.resolve_digest import run_module

    params = {"image": None, "images": [signed.image("good"), signed.image("unsigned")], "platform": None,
              "username": signed.user, "password": signed.password, "docker_config_path": None, "ca_path": None,
              "validate_certs": True, "timeout": 30.0, "retries": 0, "insecure_registries": [],
              "verify_signature": {**POLICY, "trusted_root": TRUSTED_ROOT, "required": False,
                                   "max_bundle_bytes": 262144}}  # fmt: skip
    good, unsigned = run_module(params)["images"]
    assert good["signature"]["verified"] is True
    assert good["signature"]["subject"] == LAB_SUBJECT
    assert unsigned["signature"]["verified"] is False
    assert "has no Sigstore signature" in unsigned["signature"]["reason"]


FAULTS = [
    # image, policy changes, what the one line says
    ("intruder", {}, f"is signed by {INTRUDER} ({ISSUER}), not an identity verify_signature.identities allows"),
    ("good", {"identities": [{"issuer": "https://accounts.google.com", "subject": LAB_SUBJECT}]},
     f"is signed by {LAB_SUBJECT} ({ISSUER}), not an identity"),
    ("replayed", {}, "carries a signature over another digest (sha256:"),
    ("tampered", {}, "does not verify, tampered or corrupt"),
    ("good", {"max_bundle_bytes": 1024}, "over the bound of 1024; refused before download"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "policy", "fragment"), FAULTS, ids=[f[0] + str(i) for i, f in enumerate(FAULTS)])
def test_each_fault_is_refused_in_one_line_naming_the_image(signed, name, policy, fragment):
    with pytest.raises(SignatureError) as caught:
        signed.verify(name, policy=policy)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{SIGNING}/{signed.run}/{name}@sha256:"), message
    assert fragment in message, message


def test_another_instances_trusted_root_does_not_trust_the_lab(signed):
    with pytest.raises(SignatureError) as caught:
        signed.verify("good", policy={"trusted_root": signed.other_root})
    assert f"is signed by a certificate authority that trusted root {signed.other_root} does not list" in str(
        caught.value
    )


def test_a_missing_trust_root_file_is_named():
    with pytest.raises(SignaturePolicyError, match=r"trusted root file /nonexistent/trusted_root\.json does not exist"):
        load_trusted_root("/nonexistent/trusted_root.json")


def test_a_too_large_bundle_is_refused_before_download(signed):
    proxy = BehaviourProxy(SIGNING)
    try:
        with pytest.raises(SignatureError, match="refused before download"):
            signed.verify("good", registry=proxy.address, policy={"max_bundle_bytes": 1024})
        assert not [path for _m, path, _a in proxy.seen if "/blobs/" in path], proxy.seen
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    ("referrers", "found_by"),
    [(None, "tag sha256-"), ("405", "tag sha256-"), ("api", "referrers API")],
    ids=["404-fallback", "405-fallback", "referrers-api"],
)
def test_bundles_are_found_by_the_referrers_api_or_the_tag(signed, referrers, found_by):
    """distribution 2.8 answers the referrers call 404; a registry answering 405 or having the API is a proxy."""
    proxy = BehaviourProxy(SIGNING, referrers=referrers)
    try:
        signer = signed.verify("good", registry=proxy.address)
        asked = [path for _m, path, _a in proxy.seen]
    finally:
        proxy.stop()
    assert signer.found_by.startswith(found_by)
    assert signer.subject == LAB_SUBJECT
    assert any(f"/referrers/{signed.v1}" in path for path in asked), asked


def test_an_unreachable_registry_is_named(signed):
    ref = parse_reference(f"127.0.0.1:{free_port()}/{signed.run}/good:v1")
    with signed.client(timeout=3) as client, pytest.raises(SignatureError) as caught:
        verify_signature(client, ref, signed.v1, parse_policy({**POLICY, "trusted_root": TRUSTED_ROOT}))
    assert str(caught.value).startswith(f"cannot check the signature of {ref.name}@{signed.v1}: cannot reach registry")
