# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The tenants of a host as the inventory declares them (release_tenants), for the modules that read them as they
    # are; each module's own description of the option says what it uses.
    DOCUMENTATION = r"""
options:
  tenants:
    description:
      - The tenants of the host (C(release_tenants) as it is).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Tenant name.
        type: str
        required: true
      domain:
        description: The host name nginx serves the tenant on (the C(Host) header, and SNI for HTTPS).
        type: str
        required: true
      port:
        description: The tenant's published port on 127.0.0.1.
        type: int
        required: true
      tls_cert:
        description: The certificate nginx serves for the tenant (an HTTPS site).
        type: path
      tls_key:
        description: The key of O(tenants[].tls_cert).
        type: path
      env:
        description: The tenant's environment (its OAuth client id, for one).
        type: dict
      secrets:
        description: The tenant's secret environment; never logged, and masked wherever a value could show.
        type: dict
      memory:
        description: The tenant's memory limit.
        type: str
      image:
        description: The tenant's own image, when it does not run the host's.
        type: str
      adopt_from:
        description: A container started by hand that the tenant takes over.
        type: dict
        suboptions:
          container:
            description: Its name.
            type: str
            required: true
          data:
            description: Its data folder.
            type: path
            required: true
"""
