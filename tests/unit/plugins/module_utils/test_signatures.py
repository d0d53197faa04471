# SPDX-License-Identifier: GPL-3.0-or-later
"""The signature policy's pure rules: who may sign, what a statement names, which fault is told."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pinned.release.plugins.module_utils._signatures import (
    Identity,
    SignaturePolicy,
    SignaturePolicyError,
    _refusal,
    der_utf8_string,
    matching_identity,
    parse_identities,
    parse_policy,
    statement_digests,
)

GITHUB = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/acme/open-webui/.github/workflows/release.yml@refs/heads/main"
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64

MATCHES = [
    # identity, issuer, subject, matches
    (Identity(GITHUB, subject=WORKFLOW), GITHUB, WORKFLOW, True),
    (Identity(GITHUB, subject=WORKFLOW), GITHUB, WORKFLOW + "x", False),
    (Identity(GITHUB, subject=WORKFLOW), "https://accounts.google.com", WORKFLOW, False),
    (Identity(GITHUB, subject=WORKFLOW), GITHUB + "/", WORKFLOW, False),
    (Identity(GITHUB, subject_regexp=r"https://github\.com/acme/.*"), GITHUB, WORKFLOW, True),
    (Identity(GITHUB, subject_regexp=r"https://github\.com/acme/.*"), GITHUB, "https://github.com/evil/x", False),
    # full match: a prefix or an infix is not enough
    (Identity(GITHUB, subject_regexp=r"https://github\.com/acme"), GITHUB, WORKFLOW, False),
    (Identity(GITHUB, subject_regexp=r"acme"), GITHUB, WORKFLOW, False),
    (Identity(GITHUB, subject_regexp=r".*@refs/tags/v[0-9.]+"), GITHUB, WORKFLOW, False),
    (Identity(GITHUB, subject_regexp=r".*@refs/heads/main"), GITHUB, WORKFLOW, True),
    # the subject is compared as text, never as a pattern
    (Identity(GITHUB, subject="https://github.com/acme/.*"), GITHUB, WORKFLOW, False),
    (Identity("https://accounts.google.com", subject="release@acme.example"), "https://accounts.google.com",
     "release@acme.example", True),
    (Identity(GITHUB, subject=WORKFLOW), "", "", False),
]  # fmt: skip


@pytest.mark.parametrize(("identity", "issuer", "subject", "expected"), MATCHES)
def test_identity_matches(identity, issuer, subject, expected):
    assert identity.matches(issuer, subject) is expected


def test_the_first_matching_identity_is_returned():
    identities = (Identity("https://other", subject=WORKFLOW), Identity(GITHUB, subject_regexp=".*"))
    assert matching_identity(identities, GITHUB, WORKFLOW) == identities[1]
    assert matching_identity(identities, "https://third", WORKFLOW) is None


BAD_IDENTITIES = [
    (None, "identities is empty"),
    ([], "identities is empty"),
    (["ci"], "identities[0] is not a mapping"),
    ([{"subject": WORKFLOW}], "identities[0] has no issuer"),
    ([{"issuer": "", "subject": WORKFLOW}], "identities[0] has no issuer"),
    ([{"issuer": GITHUB}], "exactly one of subject and subject_regexp"),
    ([{"issuer": GITHUB, "subject": WORKFLOW, "subject_regexp": ".*"}], "exactly one of subject and subject_regexp"),
    ([{"issuer": GITHUB, "subject": ""}], "non-empty string"),
    ([{"issuer": GITHUB, "subject": WORKFLOW}, {"issuer": GITHUB, "subject_regexp": "(unclosed"}],
     "identities[1].subject_regexp '(unclosed' is not a regular expression"),
    ([{"issuer": GITHUB, "subject": WORKFLOW, "email": "x"}], "unknown key(s) email"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "fragment"), BAD_IDENTITIES)
def test_bad_identities_are_refused_in_one_line(raw, fragment):
    with pytest.raises(SignaturePolicyError) as caught:
        parse_identities(raw)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_policy_from_options():
    policy = parse_policy({"identities": [{"issuer": GITHUB, "subject": WORKFLOW, "subject_regexp": None}]})
    assert policy == SignaturePolicy(identities=(Identity(GITHUB, subject=WORKFLOW),))
    with pytest.raises(SignaturePolicyError, match="max_bundle_bytes"):
        parse_policy({"identities": [{"issuer": GITHUB, "subject": WORKFLOW}], "max_bundle_bytes": 10})


def statement(*digests: str) -> bytes:
    subjects = [{"name": "registry/app", "digest": {"sha256": d.split(":", 1)[1]}} for d in digests]
    return json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": subjects}).encode()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (statement(DIGEST), [DIGEST]),
        (statement(OTHER, DIGEST), [OTHER, DIGEST]),
        (statement(), []),
        (b"not json", []),
        (b"[]", []),
        (json.dumps({"subject": [{"digest": {"sha512": "x"}}, "text"]}).encode(), []),
    ],
)
def test_statement_digests(payload, expected):
    assert statement_digests(payload) == expected


POLICY = SignaturePolicy(identities=(Identity(GITHUB, subject=WORKFLOW),), trusted_root="/etc/trusted_root.json")


@pytest.mark.parametrize(
    ("faults", "fragments"),
    [
        ([], ["has no Sigstore signature", "sign it in the build"]),
        ([("tampered", "a bundle that does not verify (x)"), ("other identity", f"me ({GITHUB})")],
         ["is signed by me", "not an identity verify_signature.identities allows", WORKFLOW]),
        ([("too large", "bundle 1 is 9 bytes"), ("other digest", OTHER)], ["signature over another digest", OTHER]),
        ([("untrusted", "chain")], ["trusted root /etc/trusted_root.json does not list"]),
        ([("too large", "its bundle is 300000 bytes")], ["refused before download"]),
    ],
)  # fmt: skip
def test_the_most_telling_fault_is_told_in_one_line(faults, fragments):
    message = _refusal("registry/app@" + DIGEST, faults, POLICY)
    assert message.startswith("registry/app@" + DIGEST)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"\x0c\x05hello", "hello"),
        (b"\x0c\x81\x80" + b"a" * 128, "a" * 128),  # a long issuer URL: long-form length
        (b"\x0c\x05hell", ""),  # truncated
        (b"\x13\x05hello", ""),  # a PrintableString, not a UTF8String
        (b"", ""),
    ],
)
def test_der_utf8_string(raw, text):
    assert der_utf8_string(raw) == text
