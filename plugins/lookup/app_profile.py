# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: app_profile
short_description: The app profile the collection releases - how it runs, its testing checklist, how to adopt it
version_added: 0.3.0
description:
  - Reads an app profile (docs/app-profiles.md) on the controller and checks it - its C(runtime) (how a tenant's
    container runs and when it is ready), C(checklist_before) and C(checklist) (the testing checklist before and
    after the candidate) and C(adoption) (how a hand-started container's secret key is found).
  - A profile is chosen by name - one of the collection's C(profiles/<name>.yml) (C(open-webui), the default, and
    C(generic-http)) - or by the absolute path of a profile file of one's own, e.g.
    C("{{ inventory_dir }}/profiles/myapp.yml").
  - A bad profile (an unknown name, a missing file, an unknown key, a value of the wrong type, Jinja in it, a check
    that cannot run) fails in one line naming the file and the key.
author:
  - pinned.release maintainers (@pinned-release)
options:
  _terms:
    description: The profile's name or the absolute path of its file (C(release_app_profile)); one term.
    required: true
    type: list
    elements: str
  overrides:
    description:
      - Settings merged over the profile's C(runtime), mappings key by key (C(release_app)); adoption's C(data_path),
        C(container_port) and C(container_prefix) follow them.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The runtime the tenant role deploys with
  ansible.builtin.debug:
    msg: "{{ lookup('pinned.release.app_profile', release_app_profile | default('open-webui'),
             overrides=release_app | default({})).runtime }}"

- name: What adoption reads from a hand-started container
  ansible.builtin.debug:
    msg: "{{ lookup('pinned.release.app_profile', release_app_profile | default('open-webui'),
             overrides=release_app | default({})).adoption }}"
"""

RETURN = r"""
_raw:
  description:
    - The profile, as a one-item list - the keys below, and C(description) (what the app is, one line).
  type: list
  elements: dict
  contains:
    name:
      description: The profile's name (its file name without C(.yml)).
      type: str
    path:
      description: The profile file read.
      type: str
    runtime:
      description: How a tenant's container runs and when it is ready, with O(overrides) merged over it.
      type: dict
    checklist_before:
      description: The checks run before the candidate is deployed (C(pinned.release.run_checklist)'s format).
      type: list
      elements: dict
    checklist:
      description: The checks run once the candidate runs.
      type: list
      elements: dict
    adoption:
      description:
        - C(secret_key_env) and C(secret_key_file) (empty - the app has no secret key to carry over), and
          C(data_path), C(container_port) and C(container_prefix) from the runtime.
      type: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.pinned.release.plugins.plugin_utils._app_profiles import AppProfileError, resolve


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        unknown = sorted(set(kwargs) - {"overrides"})
        if unknown:
            raise AnsibleLookupError(f"app_profile takes overrides= only, got {', '.join(unknown)}")
        if len(terms) != 1:
            raise AnsibleLookupError(
                f"app_profile takes one profile name or file path (release_app_profile), got {len(terms)}"
            )
        try:
            return [resolve(terms[0], kwargs.get("overrides", {}))]
        except AppProfileError as exc:
            raise AnsibleLookupError(str(exc)) from None
