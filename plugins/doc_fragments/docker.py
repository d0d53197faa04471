# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker engine API, C(unix:///path/to/socket) or C(tcp://host:port).
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls:
    description:
      - Use TLS to talk to the engine, without verifying it unless O(validate_certs=true).
    type: bool
    default: false
  validate_certs:
    description:
      - Use TLS and verify the engine's certificate against O(ca_path).
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate that signed the engine's certificate.
    type: path
    aliases: [ca_cert, tls_ca_cert, cacert_path]
  client_cert:
    description:
      - Client certificate for TLS client authentication.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Key of O(client_cert).
    type: path
    aliases: [tls_client_key, key_path]
  tls_hostname:
    description:
      - Host name the engine's certificate must name, when O(validate_certs=true).
    type: str
  api_timeout:
    description:
      - Seconds to wait for each engine API call.
    type: int
    default: 60
requirements:
  - Docker SDK for Python (C(python3-docker) on Debian) on the managed host
"""
