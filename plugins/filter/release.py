# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: tenant_specs
short_description: Describe the containers of a host's tenants
version_added: 0.1.0
description:
  - Turns C(release_tenants) and the app profile into what the C(tenant) role runs and checks - container names,
    env files, labels, published ports, the C(docker run) argument list.
  - The specs carry no secret value, so they are safe to loop over.
  - The same plugin file provides C(tenant_expectations) (the C(verify_container) expectations, with secrets, for
    that module to mask), C(tenant_secret_files) (for C(no_log) tasks only), C(tenant_problems) (one-line problems
    with the declared tenants, empty when they can be deployed) and C(check_outcomes) (judges looped
    C(ansible.builtin.uri) results against checklist entries) and C(evidence_hosts) (the per-host part of a test
    evidence record), and C(drift_report), C(drift_markdown), C(drift_junit) (the fleet drift report of
    C(drift.yml) and its Markdown and JUnit XML renderings).
positional: app, image
options:
  _input:
    description: The tenants (C(release_tenants)).
    type: list
    elements: dict
    required: true
  app:
    description: The merged app profile.
    type: dict
    required: true
  image:
    description: The C(repository@sha256:...) reference to run.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Describe the tenants
  ansible.builtin.set_fact:
    _specs: "{{ release_tenants | pinned.release.tenant_specs(app_profile, release_pin.image) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: One dictionary per tenant.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.pinned.release.plugins.module_utils._drift import (
    drift_junit,
    drift_markdown,
    drift_report,
    drift_row,
)
from ansible_collections.pinned.release.plugins.module_utils._tenants import (
    check_outcomes,
    evidence_hosts,
    tenant_expectations,
    tenant_problems,
    tenant_secret_files,
    tenant_specs,
)


def _clear_errors(function):
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(str(exc)) from exc

    return wrapper


def _drift_report(hosts, hostvars, pin_image, result_var="_drift_check"):
    return drift_report(hosts, {host: hostvars[host].get(result_var) for host in hosts}, pin_image)


class FilterModule:
    def filters(self):
        return {
            "tenant_specs": _clear_errors(tenant_specs),
            "tenant_expectations": _clear_errors(tenant_expectations),
            "tenant_secret_files": _clear_errors(tenant_secret_files),
            "tenant_problems": tenant_problems,
            "check_outcomes": check_outcomes,
            "evidence_hosts": evidence_hosts,
            "drift_report": _drift_report,
            "drift_markdown": drift_markdown,
            "drift_junit": drift_junit,
            "drift_row": drift_row,
        }
