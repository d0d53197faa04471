# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  username:
    description:
      - Registry user name. With O(password), used for basic auth or to obtain a bearer token.
      - When not set, credentials come from O(docker_config_path).
    type: str
  password:
    description:
      - Password or access token for O(username).
    type: str
  docker_config_path:
    description:
      - A docker client config whose C(auths), C(credsStore) and C(credHelpers) provide credentials,
        the way C(docker login) stores them. A missing file means anonymous access.
    type: path
    default: ~/.docker/config.json
  ca_path:
    description:
      - PEM bundle of the certificate authority that signed the registry's TLS certificate.
    type: path
  validate_certs:
    description:
      - Verify the registry's TLS certificate. Only turn this off for a throwaway lab.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each HTTP response.
    type: float
    default: 30.0
  retries:
    description:
      - How often to retry on HTTP 429 and 5xx answers, with exponential backoff that honours C(Retry-After).
    type: int
    default: 3
  insecure_registries:
    description:
      - Registries (C(host) or C(host:port)) to reach over plain HTTP.
      - HTTPS is always tried first. Plain HTTP is used only when the server does not speak TLS and the registry is
        loopback (C(127.0.0.0/8), C(::1), C(localhost)) or listed here, as docker does.
    type: list
    elements: str
    default: []
requirements:
  - requests (on the host that runs the module, usually the controller)
"""
