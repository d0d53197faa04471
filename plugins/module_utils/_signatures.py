# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sigstore signatures of an image: find its bundles in the registry, verify them offline, say who signed.

Bundles are found the way registries store them: the OCI 1.1 referrers API, and the ``sha256-<hex>`` tag index
for registries without it (a 404 or 405 to the referrers call, or no bundle there). Each is verified with
sigstore-python against a trusted root file, with no network: the certificate chain, the transparency log
entry and timestamps, the DSSE signature. Then the rules of this collection: the certificate's identity must be
one the policy lists, and the signed in-toto statement must name exactly the digest being resolved.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Optional

from ansible_collections.pinned.release.plugins.module_utils._reference import ImageReference
from ansible_collections.pinned.release.plugins.module_utils._registry import (
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    RegistryError,
    TooLarge,
)

BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
    }
)
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
DEFAULT_MAX_BUNDLE_BYTES = 256 * 1024
MAX_BUNDLES = 16  # bundles looked at per image: a registry listing thousands is not read to the end
# Fulcio's certificate extensions for the OIDC issuer: v2 (a DER UTF8String) and the legacy v1 (raw bytes).
ISSUER_OID_V2 = "1.3.6.1.4.1.57264.1.8"
ISSUER_OID_V1 = "1.3.6.1.4.1.57264.1.1"
# The production trusted root that ships inside sigstore-python (read offline; it is as fresh as the library).
EMBEDDED_ROOT = ("sigstore._store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")


class SignatureError(Exception):
    """A signature that is absent or not acceptable; the message is one line naming the image and what to do."""


class SignaturePolicyError(SignatureError):
    """The policy itself is wrong (an option, not the image)."""


@dataclass(frozen=True)
class Identity:
    """Who may sign: an OIDC issuer and the certificate's subject (SAN), exact or a full-match regular expression."""

    issuer: str
    subject: Optional[str] = None
    subject_regexp: Optional[str] = None

    def matches(self, issuer: str, subject: str) -> bool:
        if issuer != self.issuer:
            return False
        if self.subject is not None:
            return subject == self.subject
        return re.fullmatch(self.subject_regexp or "", subject) is not None

    def describe(self) -> str:
        who = self.subject if self.subject is not None else f"/{self.subject_regexp}/"
        return f"{who} ({self.issuer})"


@dataclass(frozen=True)
class SignaturePolicy:
    identities: tuple
    trusted_root: Optional[str] = None
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES


@dataclass(frozen=True)
class Signer:
    """Who signed a digest, and where the accepted bundle was found."""

    issuer: str
    subject: str
    found_by: str
    bundle_digest: str

    def as_dict(self) -> dict:
        return {
            "issuer": self.issuer,
            "subject": self.subject,
            "found_by": self.found_by,
            "bundle_digest": self.bundle_digest,
        }


def parse_identities(raw: Any) -> tuple:
    """The policy's identities from options: a non-empty list of {issuer, subject | subject_regexp}."""
    if not isinstance(raw, list) or not raw:
        raise SignaturePolicyError(
            "verify_signature.identities is empty: list who may sign, e.g. {issuer: https://token.actions.githubusercontent.com, subject_regexp: ...}"
        )
    identities = []
    for index, entry in enumerate(raw):
        where = f"verify_signature.identities[{index}]"
        if not isinstance(entry, dict):
            raise SignaturePolicyError(
                f"{where} is not a mapping: give {{issuer, subject}} or {{issuer, subject_regexp}}"
            )
        unknown = sorted(set(entry) - {"issuer", "subject", "subject_regexp"})
        if unknown:
            raise SignaturePolicyError(
                f"{where} has unknown key(s) {', '.join(unknown)}: only issuer, subject, subject_regexp"
            )
        issuer, subject, pattern = entry.get("issuer"), entry.get("subject"), entry.get("subject_regexp")
        if not isinstance(issuer, str) or not issuer:
            raise SignaturePolicyError(f"{where} has no issuer: give the OIDC issuer URL the signing certificate names")
        if (subject is None) == (pattern is None):
            raise SignaturePolicyError(f"{where} needs exactly one of subject and subject_regexp")
        value = subject if subject is not None else pattern
        if not isinstance(value, str) or not value:
            raise SignaturePolicyError(f"{where}: subject/subject_regexp must be a non-empty string")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SignaturePolicyError(
                    f"{where}.subject_regexp {pattern!r} is not a regular expression: {exc}"
                ) from exc
        identities.append(Identity(issuer=issuer, subject=subject, subject_regexp=pattern))
    return tuple(identities)


def parse_policy(raw: dict) -> SignaturePolicy:
    """verify_signature's options -> a policy (``required`` is the caller's business)."""
    bound = raw.get("max_bundle_bytes") or DEFAULT_MAX_BUNDLE_BYTES
    if not isinstance(bound, int) or bound < 1024:
        raise SignaturePolicyError(
            f"verify_signature.max_bundle_bytes must be a number of bytes of at least 1024, got {bound!r}"
        )
    return SignaturePolicy(
        identities=parse_identities(raw.get("identities")),
        trusted_root=raw.get("trusted_root") or None,
        max_bundle_bytes=bound,
    )


def matching_identity(identities: tuple, issuer: str, subject: str) -> Optional[Identity]:
    return next((identity for identity in identities if identity.matches(issuer, subject)), None)


def statement_digests(payload: bytes) -> list:
    """The ``sha256:<hex>`` digests an in-toto statement's subjects name."""
    try:
        statement = json.loads(payload)
    except ValueError:
        return []
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    found = []
    for entry in subjects if isinstance(subjects, list) else []:
        digest = entry.get("digest") if isinstance(entry, dict) else None
        if isinstance(digest, dict) and isinstance(digest.get("sha256"), str):
            found.append("sha256:" + digest["sha256"])
    return found


# ------------------------------------------------------------------ finding bundles


@dataclass(frozen=True)
class FoundBundle:
    body: bytes
    digest: str
    found_by: str


def _json_object(body: Optional[bytes]) -> dict:
    try:
        document = json.loads(body or b"")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _bundle_entries(index: dict) -> list:
    entries = index.get("manifests")
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("artifactType") in BUNDLE_MEDIA_TYPES | {None}]


def list_bundle_manifests(client: RegistryClient, ref: ImageReference, digest: str) -> tuple:
    """(entries, found_by): the referrers API first; the ``sha256-<hex>`` tag when it has none or answers 404/405."""
    referrers = client.fetch(ref, f"referrers/{digest}", OCI_INDEX, MAX_MANIFEST_BYTES, f"the referrers of {digest}")
    if referrers.status < 300:
        entries = _bundle_entries(_json_object(referrers.body))
        if entries:
            return entries, "referrers API"
    tag = digest.replace(":", "-", 1)
    index = client.fetch(ref, f"manifests/{tag}", OCI_INDEX, MAX_MANIFEST_BYTES, f"the {tag} tag")
    if index.status >= 300:
        return [], None
    return _bundle_entries(_json_object(index.body)), f"tag {tag}"


def fetch_bundles(client: RegistryClient, ref: ImageReference, digest: str, max_bytes: int) -> tuple:
    """(bundles, faults): each bundle's bytes, checked against the digests the registry gave; faults say why not."""
    entries, found_by = list_bundle_manifests(client, ref, digest)
    bundles, faults = [], []
    for entry in entries[:MAX_BUNDLES]:
        manifest_digest = str(entry.get("digest", ""))
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", manifest_digest):
            faults.append(
                ("tampered", f"the registry lists a signature manifest without a sha256 digest ({manifest_digest!r})")
            )
            continue
        fetched = client.fetch(
            ref, f"manifests/{manifest_digest}", OCI_MANIFEST, MAX_MANIFEST_BYTES, f"manifest {manifest_digest}"
        )
        if fetched.body is None or "sha256:" + hashlib.sha256(fetched.body).hexdigest() != manifest_digest:
            faults.append(
                ("tampered", f"signature manifest {manifest_digest} is missing or its bytes do not hash to its digest")
            )
            continue
        manifest = _json_object(fetched.body)
        if (manifest.get("subject") or {}).get("digest") != digest:
            faults.append(("other digest", f"signature manifest {manifest_digest} is attached to another image"))
            continue
        layers = [
            layer
            for layer in manifest.get("layers") or []
            if isinstance(layer, dict) and layer.get("mediaType") in BUNDLE_MEDIA_TYPES
        ]
        if not layers:
            continue  # another kind of referrer (an SBOM, a cosign attestation): not a signature bundle
        layer = layers[0]
        size, blob_digest = layer.get("size"), str(layer.get("digest", ""))
        if not isinstance(size, int) or size > max_bytes:
            faults.append(
                ("too large", f"its signature bundle {blob_digest} is {size} bytes, over the bound of {max_bytes}")
            )
            continue
        try:
            blob = client.fetch(ref, f"blobs/{blob_digest}", "*/*", max_bytes, f"signature bundle {blob_digest}")
        except TooLarge as exc:
            faults.append(("too large", str(exc)))
            continue
        if blob.body is None or "sha256:" + hashlib.sha256(blob.body).hexdigest() != blob_digest:
            faults.append(
                ("tampered", f"signature bundle {blob_digest} is missing or its bytes do not hash to its digest")
            )
            continue
        bundles.append(FoundBundle(blob.body, blob_digest, found_by or ""))
    return bundles, faults


# ------------------------------------------------------------------ verifying


def _sigstore() -> Any:
    try:
        from sigstore import errors, models  # about a second to import: only when verifying
        from sigstore.verify import verifier
    except ImportError as exc:
        raise SignatureError(
            f"verify_signature needs sigstore-python where resolve_digest runs (pip install sigstore==4.5.1): {exc}"
        ) from exc
    return errors, models, verifier


def load_trusted_root(path: Optional[str]) -> Any:
    """The trusted root from a file, or sigstore-python's embedded production root; never from the network."""
    errors, models, _verifier = _sigstore()
    if path is None:
        import importlib.resources

        package, folder, name = EMBEDDED_ROOT
        resource = importlib.resources.files(package).joinpath(folder, name)
        with importlib.resources.as_file(resource) as embedded:
            return models.TrustedRoot.from_file(str(embedded))
    if not os.path.isfile(path):
        raise SignaturePolicyError(
            f"trusted root file {path} does not exist: point verify_signature.trusted_root at the trusted_root.json of your Sigstore instance"
        )
    try:
        return models.TrustedRoot.from_file(path)
    except (errors.Error, ValueError, OSError) as exc:
        raise SignaturePolicyError(f"trusted root file {path} is not a Sigstore trusted root: {_line(exc)}") from exc


def der_utf8_string(raw: bytes) -> str:
    """The text of a DER UTF8String (tag 0x0c, short or long form length); empty when it is not one."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return ""
    start, length = 2, raw[1]
    if length & 0x80:
        count = length & 0x7F
        start, length = 2 + count, int.from_bytes(raw[2 : 2 + count], "big")
    value = raw[start : start + length]
    return value.decode("utf-8", "replace") if len(value) == length else ""


def certificate_identity(certificate: Any) -> tuple:
    """(issuer, subject) of a Fulcio certificate: the OIDC issuer extension and the first SAN."""
    from cryptography import x509

    v1 = v2 = ""
    for extension in certificate.extensions:
        if extension.oid.dotted_string == ISSUER_OID_V2:
            v2 = der_utf8_string(extension.value.value)
        elif extension.oid.dotted_string == ISSUER_OID_V1:
            v1 = extension.value.value.decode("utf-8", "replace")
    issuer = v2 or v1
    subject = ""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = []
    for kind in (x509.UniformResourceIdentifier, x509.RFC822Name):
        values = names.get_values_for_type(kind) if names else []
        if values:
            subject = values[0]
            break
    return issuer, subject


def _issued_by_trusted_ca(certificate: Any, trusted_root: Any) -> bool:
    from cryptography.exceptions import InvalidSignature

    for ca in trusted_root.get_fulcio_certs():
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue  # not this CA (another name, key type or signature)
        return True
    return False


class _RecordIdentity:
    """A verification policy that only records the certificate: identities are judged after the full verification."""

    certificate: Any = None

    def verify(self, certificate: Any) -> None:
        self.certificate = certificate


def verify_bundle(body: bytes, digest: str, policy: SignaturePolicy, trusted_root: Any) -> tuple:
    """(kind, detail, issuer, subject) for one bundle: kind is 'ok' or the fault ('tampered', 'untrusted', ...)."""
    errors, models, verifier_module = _sigstore()
    try:
        bundle = models.Bundle.from_json(body)
    except (errors.Error, ValueError, KeyError, TypeError) as exc:
        return "tampered", f"a bundle that is not a valid Sigstore bundle ({_line(exc)})", "", ""
    recorded = _RecordIdentity()
    try:
        payload_type, payload = verifier_module.Verifier(trusted_root=trusted_root).verify_dsse(bundle, recorded)
    except (errors.Error, ValueError, TypeError, KeyError) as exc:
        if not _issued_by_trusted_ca(bundle.signing_certificate, trusted_root):
            return "untrusted", _line(exc), "", ""
        return "tampered", f"a bundle that does not verify, tampered or corrupt ({_line(exc)})", "", ""
    issuer, subject = certificate_identity(bundle.signing_certificate)
    if payload_type != IN_TOTO_PAYLOAD:
        return "other digest", f"a signature over {payload_type}, not an in-toto statement", issuer, subject
    if matching_identity(policy.identities, issuer, subject) is None:
        return "other identity", f"{subject} ({issuer})", issuer, subject
    signed = statement_digests(payload)
    if digest not in signed:
        return "other digest", ", ".join(signed) or "no digest", issuer, subject
    return "ok", "", issuer, subject


# The fault told when no bundle is acceptable: the most telling one first.
FAULT_ORDER = ("other identity", "other digest", "untrusted", "tampered", "too large")


def verify_signature(
    client: RegistryClient, ref: ImageReference, digest: str, policy: SignaturePolicy, trusted_root: Any = None
) -> Signer:
    """Who signed ``digest`` of ``ref``'s repository, by a bundle the policy accepts; SignatureError otherwise.

    ``trusted_root``: the policy's, loaded once by the caller for many images (load_trusted_root).
    """
    image = f"{ref.name}@{digest}"
    trusted_root = trusted_root if trusted_root is not None else load_trusted_root(policy.trusted_root)
    try:
        bundles, faults = fetch_bundles(client, ref, digest, policy.max_bundle_bytes)
    except RegistryError as exc:
        raise SignatureError(f"cannot check the signature of {image}: {exc}") from exc
    for found in bundles:
        kind, detail, issuer, subject = verify_bundle(found.body, digest, policy, trusted_root)
        if kind == "ok":
            return Signer(issuer=issuer, subject=subject, found_by=found.found_by, bundle_digest=found.digest)
        faults.append((kind, detail))
    raise SignatureError(_refusal(image, faults, policy))


def _refusal(image: str, faults: list, policy: SignaturePolicy) -> str:
    if not faults:
        return (
            f"{image} has no Sigstore signature (no bundle in the referrers API nor the sha256-<hex> tag): "
            "sign it in the build (cosign sign, or actions/attest) or resolve another image"
        )
    kind, detail = min(faults, key=lambda fault: FAULT_ORDER.index(fault[0]))
    allowed = "; ".join(identity.describe() for identity in policy.identities)
    root = policy.trusted_root or "sigstore-python's embedded production root"
    return {
        "other identity": f"{image} is signed by {detail}, not an identity verify_signature.identities allows ({allowed}): "
        "check who built it, or add that identity if it is trusted",
        "other digest": f"{image} carries a signature over another digest ({detail}): the signature was made for another "
        "image (copied or replayed); do not deploy it, sign this digest in the build",
        "untrusted": f"{image} is signed by a certificate authority that trusted root {root} does not list ({detail}): "
        "give the trusted root of the Sigstore instance that signed it, or do not trust this image",
        "tampered": f"{image} has {detail}: do not deploy it; sign it again from the build",
        "too large": f"{image}: {detail}; refused before download (verify_signature.max_bundle_bytes)",
    }[kind]


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."
