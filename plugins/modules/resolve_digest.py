#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: resolve_digest
short_description: Resolve an image tag to the repository digest its registry serves, without pulling
version_added: 0.1.0
description:
  - Asks the registry (OCI distribution API) which manifest a tag points to, with a C(HEAD) request and the
    C(Accept) types a C(docker pull) sends, and returns its digest. Nothing is downloaded but a manifest.
  - The digest is the one C(docker pull) records in C(RepoDigests); for a multi-platform tag it is the index digest.
    It is never the local image ID, which a registry does not know.
  - A reference that already carries C(@sha256:...) is checked to exist in the registry and returned.
  - Registries that refuse C(HEAD) (HTTP 405), omit the digest header or serve manifests as C(application/json) or
    C(application/octet-stream) are asked again with C(GET); the manifest's bytes then give its type and digest.
    Redirects (to a mirror or a CDN) are followed, each host authenticated with its own challenge; credentials
    given for the image's registry are never sent to another host.
  - "Run it on the controller (C(delegate_to: localhost), C(run_once: true))."
  - With O(verify_signature), it also checks the digest's Sigstore signature offline (sigstore-python) and returns
    who signed it in RV(signature). Signatures are found the way registries store them, the OCI 1.1 referrers API
    and the C(sha256-<hex>) tag for registries without it (a 404 or 405 to the referrers call); each bundle is
    verified against a trusted root file (certificate chain, transparency log entry and timestamps, DSSE
    signature), its certificate must name an identity the policy lists, and its signed in-toto statement must
    name exactly the digest resolved. Only certificate (keyless) signatures verify; key-signed bundles are refused.
author:
  - pinned.release maintainers (@pinned-release)
extends_documentation_fragment:
  - pinned.release.registry
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: It changes nothing, so there is no diff to show.
options:
  image:
    description:
      - "C([registry[:port]/]repository[:tag][@digest]). Docker Hub short names normalise as docker does:
        C(nginx) is C(docker.io/library/nginx:latest)."
      - Mutually exclusive with O(images); one of them is required.
    type: str
  images:
    description:
      - Resolve several references in one call, concurrently, reusing connections and tokens.
      - Results come back in RV(images), in the same order. An empty list fails.
    type: list
    elements: str
  platform:
    description:
      - C(os/architecture[/variant]), for example C(linux/amd64). When a tag is a multi-platform index, also return
        the digest of that platform's manifest in RV(platform_digest); fail when the index lacks it.
      - Compared as Docker normalises platforms, so C(linux/arm64), C(linux/arm64/v8) and C(linux/aarch64) are one
        platform.
    type: str
  verify_signature:
    description:
      - Verify the Sigstore signature of each resolved digest, and return its signer in RV(signature).
      - Needs the Python library C(sigstore) (sigstore-python 4.5) where the module runs.
    type: dict
    suboptions:
      required:
        description:
          - When true, a digest without an acceptable signature fails the module (nothing is returned for it).
          - When false, the failure is returned in RV(signature) (C(verified=false) and a C(reason)) and the
            module succeeds.
        type: bool
        default: true
      identities:
        description:
          - Who may sign. A signature is accepted when its certificate's OIDC issuer equals O(verify_signature.identities[].issuer)
            and its subject (the certificate's first URI or email SAN) equals O(verify_signature.identities[].subject) or
            matches O(verify_signature.identities[].subject_regexp) in full.
          - For GitHub Actions keyless signing the issuer is C(https://token.actions.githubusercontent.com) and the
            subject the workflow, C(https://github.com/OWNER/REPO/.github/workflows/FILE@refs/heads/BRANCH).
        type: list
        elements: dict
        required: true
        suboptions:
          issuer:
            description: The OIDC issuer URL the signing certificate names.
            type: str
            required: true
          subject:
            description: The exact subject; give this or O(verify_signature.identities[].subject_regexp).
            type: str
          subject_regexp:
            description: A Python regular expression the whole subject must match.
            type: str
      trusted_root:
        description:
          - A Sigstore C(trusted_root.json) (the CAs, transparency logs and timestamp authorities to trust). Read
            from this file only; nothing is fetched.
          - When omitted, the public Sigstore root embedded in the installed sigstore-python is used, which is as
            fresh as that library release; give the file for any other Sigstore instance.
        type: path
      max_bundle_bytes:
        description: Signature bundles larger than this are refused before they are downloaded.
        type: int
        default: 262144
notes:
  - Supports anonymous and credentialed bearer token auth (the C(WWW-Authenticate) challenge), basic auth, and
    credentials from a docker config including credential helpers.
  - Retries HTTP 429 and 5xx answers with backoff, honouring C(Retry-After).
seealso:
  - module: pinned.release.pin_digest
"""

EXAMPLES = r"""
- name: Resolve the release tag on the controller
  pinned.release.resolve_digest:
    image: ghcr.io/acme/open-webui:release
  delegate_to: localhost
  run_once: true
  register: candidate

- name: Use the digest, never the tag
  ansible.builtin.debug:
    msg: "Deploying {{ candidate.image_ref }}"

- name: A multi-platform tag, with the amd64 manifest digest too
  pinned.release.resolve_digest:
    image: docker.io/library/nginx:1.27
    platform: linux/amd64
  delegate_to: localhost
  register: nginx

- name: Many tags at once, with credentials from a vault
  pinned.release.resolve_digest:
    images:
      - registry.example.com/team/api:release
      - registry.example.com/team/worker:release
    username: "{{ vault_registry_user }}"
    password: "{{ vault_registry_token }}"
  delegate_to: localhost
  register: batch

- name: Resolve and require a signature from the release workflow
  pinned.release.resolve_digest:
    image: ghcr.io/acme/open-webui:release
    verify_signature:
      identities:
        - issuer: https://token.actions.githubusercontent.com
          subject_regexp: ^https://github\.com/acme/open-webui/\.github/workflows/release\.yml@refs/tags/v.*$
  delegate_to: localhost
  run_once: true
  register: candidate

- name: Who signed it
  ansible.builtin.debug:
    msg: "{{ candidate.signature.subject }} ({{ candidate.signature.issuer }})"
"""

RETURN = r"""
digest:
  description: The digest the tag points to (the index digest for a multi-platform tag).
  returned: when O(image) is given
  type: str
  sample: sha256:3b3c7a1a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6
image_ref:
  description: The canonical C(registry/repository@digest), the form to deploy and pin.
  returned: when O(image) is given
  type: str
  sample: ghcr.io/acme/open-webui@sha256:3b3c7a1a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6
registry:
  description: Registry name, normalised (C(docker.io) for Docker Hub).
  returned: when O(image) is given
  type: str
  sample: ghcr.io
repository:
  description: Repository path within the registry.
  returned: when O(image) is given
  type: str
  sample: acme/open-webui
tag:
  description: The tag that was resolved; null when the input was a digest reference.
  returned: when O(image) is given
  type: str
  sample: release
media_type:
  description: Media type of the manifest the registry serves.
  returned: when O(image) is given
  type: str
  sample: application/vnd.oci.image.index.v1+json
platform_digest:
  description:
    - Digest of the O(platform) manifest inside an index; the digest itself for a single-platform manifest.
  returned: when O(image) and O(platform) are given
  type: str
platforms:
  description: Runnable platforms of a multi-platform index.
  returned: when O(image) is given; empty unless the tag is an index
  type: list
  elements: dict
  contains:
    platform:
      description: C(os/architecture[/variant]).
      type: str
      returned: always
    digest:
      description: Digest of that platform's manifest.
      type: str
      returned: always
ratelimit_remaining:
  description: The registry's C(ratelimit-remaining) header (Docker Hub), when it sends one.
  returned: when O(image) is given
  type: str
signature:
  description:
    - The Sigstore signature check of the digest, when O(verify_signature) is given.
  returned: when O(image) and O(verify_signature) are given (and in each RV(images) entry)
  type: dict
  contains:
    verified:
      description: Whether a signature the policy accepts was found and verified.
      type: bool
      returned: always
    issuer:
      description: The OIDC issuer of the accepted signature's certificate.
      type: str
      returned: when verified
      sample: https://token.actions.githubusercontent.com
    subject:
      description: The subject (first URI or email SAN) of the accepted signature's certificate.
      type: str
      returned: when verified
      sample: https://github.com/acme/open-webui/.github/workflows/release.yml@refs/heads/main
    found_by:
      description: Where the accepted bundle was found, C(referrers API) or C(tag sha256-<hex>).
      type: str
      returned: when verified
    bundle_digest:
      description: The digest of the accepted bundle in the registry.
      type: str
      returned: when verified
    reason:
      description: Why no signature was accepted (one line), when O(verify_signature.required) is false.
      type: str
      returned: when not verified
images:
  description: One result per O(images) entry, same order, each with the keys above.
  returned: when O(images) is given
  type: list
  elements: dict
"""

from ansible_collections.pinned.release.plugins.module_utils._module import PinnedModule
from ansible_collections.pinned.release.plugins.module_utils._reference import ImageReferenceError, parse_reference
from ansible_collections.pinned.release.plugins.module_utils._registry import (
    REGISTRY_ARGUMENT_SPEC,
    RegistryError,
    client_from_params,
)
from ansible_collections.pinned.release.plugins.module_utils._signatures import (
    DEFAULT_MAX_BUNDLE_BYTES,
    SignatureError,
    load_trusted_root,
    parse_policy,
    verify_signature,
)

VERIFY_SIGNATURE_SPEC = {
    "required": {"type": "bool", "default": True},
    "identities": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "issuer": {"type": "str", "required": True},
            "subject": {"type": "str"},
            "subject_regexp": {"type": "str"},
        },
    },
    "trusted_root": {"type": "path"},
    "max_bundle_bytes": {"type": "int", "default": DEFAULT_MAX_BUNDLE_BYTES},
}


def signature_of(client, ref, digest: str, policy, trusted_root, required: bool) -> dict:
    """The signature check of one digest: its signer, or (when not required) why there is none."""
    try:
        return {"verified": True, **verify_signature(client, ref, digest, policy, trusted_root).as_dict()}
    except SignatureError as exc:
        if required:
            raise
        return {"verified": False, "reason": str(exc)}


def run_module(params: dict) -> dict:
    many = params["images"] is not None
    if many and not params["images"]:
        raise ImageReferenceError("images is empty: give at least one image to resolve")
    refs = [parse_reference(text) for text in (params["images"] if many else [params["image"]])]
    checks = params["verify_signature"]
    if checks is not None:  # the policy and its trusted root are checked before the registry is asked anything
        policy = parse_policy(checks)
        trusted_root = load_trusted_root(policy.trusted_root)
    with client_from_params(params) as client:
        resolutions = client.resolve_many(refs, params["platform"])
        results = [r.as_dict() for r in resolutions]
        if checks is not None:
            for ref, result in zip(refs, results):
                result["signature"] = signature_of(
                    client, ref, result["digest"], policy, trusted_root, checks["required"]
                )
    if many:
        return {"changed": False, "images": results}
    return {"changed": False, **results[0]}


def main() -> None:
    module = PinnedModule(
        argument_spec={
            "image": {"type": "str"},
            "images": {"type": "list", "elements": "str"},
            "platform": {"type": "str"},
            "verify_signature": {"type": "dict", "options": VERIFY_SIGNATURE_SPEC},
            **REGISTRY_ARGUMENT_SPEC,
        },
        mutually_exclusive=[("image", "images")],
        required_one_of=[("image", "images")],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run_module(module.params))
    except (ImageReferenceError, RegistryError, SignatureError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
