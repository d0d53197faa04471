# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The nginx side of a host's transaction: the sites every declared tenant should have, and the changes to them."""

from __future__ import annotations

from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._nginx import (
    COMMON_FILE,
    Nginx,
    render_common,
    render_site,
    site_file,
)


class Sites:
    """The collection's nginx files for a host's tenants; ``nginx`` None when nginx is not managed."""

    def __init__(self, nginx: Optional[Nginx], app: dict, http_port: int, https_port: int, default_server: bool,
                 access_log_dir: str = "") -> None:  # fmt: skip
        self.nginx = nginx
        self.access_log_dir = access_log_dir
        self.app = app
        self.http_port = http_port
        self.https_port = https_port
        self.default_server = default_server
        self.changed: list = []

    @property
    def ports(self) -> Optional[tuple]:
        """(http, https) of nginx in front of the tenants, or None: the smoke checks go to the tenant's port then."""
        return (self.http_port, self.https_port) if self.nginx is not None else None

    def render(self, spec: dict) -> Optional[str]:
        if self.nginx is None:
            return None
        return render_site(spec, self.app, self.http_port, self.https_port, self.access_log_dir)

    def desired(self, specs: list) -> dict:
        if self.nginx is None:
            return {}
        sites = {site_file(s["name"]): self.render(s) for s in specs}
        tls = any(s.get("tls_cert") for s in specs)
        sites[COMMON_FILE] = render_common(self.default_server, tls, self.http_port, self.https_port)
        return sites

    def current(self) -> dict:
        return self.nginx.current() if self.nginx is not None else {}

    def site_of(self, tenant: str) -> Optional[str]:
        return self.current().get(site_file(tenant))

    def apply(self, changes: dict) -> list:
        """Write ``{file: content or None}`` as one checked change (NginxError, undone, when nginx rejects it)."""
        if self.nginx is None or not changes:
            return []
        done = self.nginx.apply(changes)
        self.changed += done
        return done

    def outside(self, specs: list, exclude: set) -> dict:
        """What to change before any tenant moves: the common file, the sites of tenants not moving, removals."""
        wanted = self.desired(specs)
        current = self.current()
        moving = {site_file(name) for name in exclude}
        changes = {
            name: content for name, content in wanted.items() if name not in moving and current.get(name) != content
        }
        changes.update({name: None for name in current if name not in wanted})
        return changes
