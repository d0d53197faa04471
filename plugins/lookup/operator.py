# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: operator
short_description: Who is running this release, for locks, audit logs, evidence and incidents
version_added: 0.2.0
description:
  - C(PINNED_OPERATOR) from the controller's environment, else C(USER), else the controller's login name, else
    C(unknown). One place decides it, for every role and playbook of the collection.
author:
  - pinned.release maintainers (@pinned-release)
"""

EXAMPLES = r"""
- name: Who deploys
  ansible.builtin.debug:
    msg: "{{ lookup('pinned.release.operator') }}"
"""

RETURN = r"""
_raw:
  description: The operator's name, as a one-item list.
  type: list
  elements: str
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.pinned.release.plugins.plugin_utils._controller import operator


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        return [operator()]
