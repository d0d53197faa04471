# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters over the declared tenants: tenant_problems (documented in its .yml file)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.pinned.release.plugins.module_utils._tenants import settings_problems, tenant_problems


def problems(tenants, app, image=None, settings=None):
    found = tenant_problems(tenants, app, image)
    if settings is not None:
        if not isinstance(settings, dict):
            raise AnsibleFilterError(f"tenant_problems: settings must be a mapping, got {type(settings).__name__}")
        found += settings_problems(settings)
    return found


class FilterModule:
    def filters(self):
        return {"tenant_problems": problems}
