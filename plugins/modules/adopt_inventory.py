#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: adopt_inventory
short_description: Write adopted tenants into the inventory, their secrets vault-encrypted, and an adoption report
version_added: 0.2.0
description:
  - From each host's M(pinned.release.adopt_facts) result, writes on the controller
    C(host_vars/<host>/release_tenants.yml) (plain values; each tenant keeps the exact digest it ran as its C(image),
    so adoption changes no version), the secret values vault-encrypted in C(host_vars/<host>/adopted_secrets.yml)
    (referenced from the tenants as C(vault_adopted_secrets)), and C(<report_dir>/<host>.md) - what was found, what
    is held back and why, what the first deploy changes.
  - A container with a problem (data inside the container, no repository digest, another repository, stopped, no
    secret key, no port or domain, a domain or port another container claims) is not declared; the report says what
    to do.
  - Encrypts with the vault secret given to ansible-playbook (C(--vault-id) or C(--vault-password-file)); without one
    it refuses to write secrets unless O(secrets_in_clear). An existing C(release_tenants) for a host is never
    overwritten - refused, or with O(existing=merge) only the tenants it does not declare are added (the secrets
    adopted before are kept; a list declared in another file than C(release_tenants.yml) is refused, since Ansible
    would use only one of the two lists).
  - Ansible stops reading C(host_vars/<host>.yml) once a C(host_vars/<host>/) folder exists, so such a file is moved
    into the folder unchanged before anything is written there.
  - Runs on the controller (an action plugin).
author:
  - pinned.release maintainers (@pinned-release)
attributes:
  check_mode:
    support: full
    description: Writes nothing; says which files it would write and whether they would change.
  diff_mode:
    support: none
    description: The files hold secrets.
  action:
    support: full
    description: Runs on the controller.
options:
  results:
    description: Host to its M(pinned.release.adopt_facts) result.
    type: dict
    required: true
  inventory_dir:
    description: The inventory folder (its C(host_vars/) is written).
    type: path
    required: true
  report_dir:
    description: Where the reports go, one per host.
    type: path
    required: true
  container_prefix:
    description: The app's container prefix, taken off a container's name to name its tenant.
    type: str
    default: openwebui-
  existing:
    description: What to do when a host already declares C(release_tenants).
    type: str
    choices: [refuse, merge]
    default: refuse
  secrets_in_clear:
    description: Write the secrets unencrypted when no vault secret was given.
    type: bool
    default: false
  vault_id:
    description: Which of the given vault ids to encrypt with (the first one by default).
    type: str
"""

EXAMPLES = r"""
- name: Write the adopted tenants
  pinned.release.adopt_inventory:
    results: "{{ hostvars | pinned.release.host_facts(ansible_play_hosts_all, 'adopt_found') }}"
    inventory_dir: "{{ inventory_dir }}"
    report_dir: "{{ inventory_dir }}/.release_state/adoption"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
files:
  description: The files written (or, in check mode, to be written).
  returned: always
  type: list
  elements: str
moved:
  description: Host files moved into their host's folder (C(source -> target)).
  returned: always
  type: list
  elements: str
adopted:
  description: Host to the tenants declared.
  returned: always
  type: dict
held_back:
  description: Host to the containers not declared (the report says why).
  returned: always
  type: dict
encrypted:
  description: Whether the secrets were vault-encrypted.
  returned: always
  type: bool
"""
