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


def run_module(params: dict) -> dict:
    many = params["images"] is not None
    if many and not params["images"]:
        raise ImageReferenceError("images is empty: give at least one image to resolve")
    refs = [parse_reference(text) for text in (params["images"] if many else [params["image"]])]
    with client_from_params(params) as client:
        resolutions = client.resolve_many(refs, params["platform"])
    if many:
        return {"changed": False, "images": [r.as_dict() for r in resolutions]}
    return {"changed": False, **resolutions[0].as_dict()}


def main() -> None:
    module = PinnedModule(
        argument_spec={
            "image": {"type": "str"},
            "images": {"type": "list", "elements": "str"},
            "platform": {"type": "str"},
            **REGISTRY_ARGUMENT_SPEC,
        },
        mutually_exclusive=[("image", "images")],
        required_one_of=[("image", "images")],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run_module(module.params))
    except (ImageReferenceError, RegistryError) as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
