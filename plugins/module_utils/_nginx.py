# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nginx in front of the tenants: the files this collection owns, rendered and applied as one change.

The collection owns every ``pinned-release-*.conf`` in the site folder: one site per tenant, and a common
file (the websocket ``map`` and a default server that answers unknown Host/SNI with nothing). A change is
written, checked with ``nginx -t`` and reloaded; when nginx rejects it, each file goes back as it was (a
new file is removed, a changed one restored) before the error is raised, so the next reload cannot take
nginx down for every tenant.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._fs import fsync_dir, write_atomic

PREFIX = "pinned-release-"
COMMON_NAME = "common"  # a tenant cannot be called this: its site would be the shared file
COMMON_FILE = f"{PREFIX}{COMMON_NAME}.conf"
HEADER = "# Managed by pinned.release (tenant_rollout): rewritten on every deploy, do not edit.\n"
MAINTENANCE_LOCATION = "@pinned_release_maintenance"
TLS_PATH_RE = re.compile(r"^/[A-Za-z0-9._@+/-]+$")
# A duration or size as nginx writes them: 100m, 3600s, 1h.
NGINX_VALUE_RE = re.compile(r"^[0-9]+[a-zA-Z]{0,2}$")
LOCATION_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")

MAINTENANCE_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>Back in a moment</title></head>"
    "<body style='font-family:sans-serif;text-align:center;margin-top:15%'><h1>Back in a moment</h1>"
    "<p>This service is being updated and will be back within a minute.</p></body></html>"
)


class NginxError(Exception):
    """nginx rejected a change (it was undone) or could not be reloaded; the message says which files."""


def site_file(tenant: str) -> str:
    return f"{PREFIX}{tenant}.conf"


def tls_problem(cert: object, key: object) -> Optional[str]:
    """Why a tenant's TLS paths cannot go into an nginx site, or None."""
    if not cert and not key:
        return None
    if not cert or not key:
        return "tls_cert and tls_key go together: give both or neither"
    for label, value in (("tls_cert", cert), ("tls_key", key)):
        if not isinstance(value, str) or not TLS_PATH_RE.fullmatch(value) or "/../" in value + "/":
            return f"{label} {value!r} must be an absolute path of letters, digits and ._@+-/ only"
    return None


def proxy_problem(app: dict) -> Optional[str]:
    """Why the app profile's nginx settings cannot be written into a site, or None."""
    for key in ("client_max_body_size", "proxy_read_timeout"):
        value = str(app.get(key, ""))
        if not NGINX_VALUE_RE.fullmatch(value):
            return f"release_app.{key} {value!r} must be a number with an optional unit, e.g. 100m or 3600s"
    websocket = app.get("websocket_path")
    if websocket and (not isinstance(websocket, str) or not LOCATION_RE.fullmatch(websocket)):
        return f"release_app.websocket_path {websocket!r} must be a path such as /ws/socket.io"
    return None


def _proxy_block(port: int, app: dict, connection: str) -> list:
    timeout = app.get("proxy_read_timeout", "3600s")
    return [
        f"        proxy_pass http://127.0.0.1:{port};",
        "        proxy_http_version 1.1;",
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Real-IP $remote_addr;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header Upgrade $http_upgrade;",
        f"        proxy_set_header Connection {connection};",
        "        # Streamed answers (server-sent events) reach the browser as they are written.",
        "        proxy_buffering off;",
        "        proxy_request_buffering off;",
        "        proxy_cache off;",
        "        gzip off;",
        '        add_header X-Accel-Buffering "no" always;',
        f"        proxy_read_timeout {timeout};",
        f"        proxy_send_timeout {timeout};",
        "        # While the container is being replaced: 503 with Retry-After, never a bare 502.",
        f"        error_page 502 504 = {MAINTENANCE_LOCATION};",
    ]


def access_log_path(directory: str, tenant: str) -> str:
    """Where a tenant's site logs its requests (the post-release watch counts its 5xx answers there)."""
    return f"{directory.rstrip('/')}/{PREFIX}{tenant}.access.log"


def access_log_dir_problem(directory: object) -> Optional[str]:
    """Why a folder cannot hold the tenants' access logs in an nginx site, or None (empty: no per-tenant log)."""
    if directory in (None, ""):
        return None
    if not isinstance(directory, str) or not TLS_PATH_RE.fullmatch(directory) or "/../" in directory + "/":
        return f"nginx.access_log_dir {directory!r} must be an absolute path of letters, digits and ._@+-/ only"
    return None


def render_site(spec: dict, app: dict, http_port: int = 80, https_port: int = 443, access_log_dir: str = "") -> str:
    """The nginx site of one tenant (spec from _tenants.tenant_spec); its own access log in ``access_log_dir``."""
    name, domain, port = spec["name"], spec["domain"], spec["port"]
    tls = bool(spec.get("tls_cert"))
    lines = [HEADER.rstrip("\n"), f"# Tenant {name}: {domain} -> 127.0.0.1:{port} ({spec['container']})"]
    if tls:
        lines += ["server {", f"    listen {http_port};", f"    server_name {domain};",
                  "    return 301 https://$host$request_uri;", "}", ""]  # fmt: skip
    lines += ["server {"]
    if tls:
        lines += [f"    listen {https_port} ssl http2;", f"    ssl_certificate {spec['tls_cert']};",
                  f"    ssl_certificate_key {spec['tls_key']};"]  # fmt: skip
    else:
        lines += [f"    listen {http_port};"]
    lines += [f"    server_name {domain};", f"    client_max_body_size {app.get('client_max_body_size', '100m')};"]
    if access_log_dir:
        lines += [f"    access_log {access_log_path(access_log_dir, name)};"]
    lines += [""]
    lines += ["    location / {", *_proxy_block(port, app, "$pinned_release_connection_upgrade"), "    }"]
    websocket = app.get("websocket_path")
    if websocket:
        lines += ["", f"    location {websocket} {{", *_proxy_block(port, app, '"upgrade"'), "    }"]
    lines += [
        "",
        f"    location {MAINTENANCE_LOCATION} {{",
        "        default_type text/html;",
        "        add_header Retry-After 5 always;",
        '        add_header Cache-Control "no-store" always;',
        f'        return 503 "{MAINTENANCE_PAGE}";',
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_common(default_server: bool, tls: bool, http_port: int = 80, https_port: int = 443) -> str:
    """The websocket map the sites share, and the default server for unknown Host/SNI."""
    lines = [
        HEADER.rstrip("\n"),
        '# WebSocket upgrades for the tenant sites: "Connection: upgrade" only when asked.',
        "map $http_upgrade $pinned_release_connection_upgrade {",
        "    default upgrade;",
        "    ''      close;",
        "}",
    ]
    if default_server:
        lines += ["", "# A request for a name no tenant serves gets no answer at all (not the first tenant's site).",
                  "server {", f"    listen {http_port} default_server;", "    server_name _;", "    return 444;", "}"]  # fmt: skip
        if tls:
            lines += ["", "server {", f"    listen {https_port} ssl default_server;", "    server_name _;",
                      "    ssl_reject_handshake on;", "}"]  # fmt: skip
    return "\n".join(lines) + "\n"


class Nginx:
    """The collection's files in an nginx site folder, changed together, checked, reloaded."""

    def __init__(self, site_dir: str, test_command=("nginx", "-t"), reload_command=("nginx", "-s", "reload"),
                 pid_file: str = "/run/nginx.pid", sleep=time.sleep) -> None:  # fmt: skip
        self.site_dir = site_dir
        self.sleep = sleep
        self._lock = threading.Lock()  # one change at a time: each is checked and reloaded whole
        self.test_command = list(test_command)
        self.reload_command = list(reload_command)
        self.pid_file = pid_file

    def current(self) -> dict:
        """{file name: content} of every file this collection owns in the site folder."""
        files = {}
        with contextlib.suppress(FileNotFoundError):
            for name in sorted(os.listdir(self.site_dir)):
                if name.startswith(PREFIX) and name.endswith(".conf"):
                    with open(os.path.join(self.site_dir, name), encoding="utf-8", errors="replace") as handle:
                        files[name] = handle.read()
        return files

    def _run(self, command: list) -> tuple:
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 127, str(exc)
        return proc.returncode, " ".join((proc.stderr or proc.stdout or "").split())

    def apply(self, changes: dict, reload: bool = True) -> list:
        """Write ``{file name: content or None (remove)}``; undo all of it if ``nginx -t`` fails.

        Returns the names changed. Raises NginxError (after undoing) with nginx's own words.
        """
        with self._lock:
            return self._apply(changes, reload)

    def _apply(self, changes: dict, reload: bool) -> list:
        before = self.current()
        real = {name: content for name, content in changes.items() if before.get(name) != content}
        if not real:
            return []
        os.makedirs(self.site_dir, exist_ok=True)
        for name, content in real.items():
            path = os.path.join(self.site_dir, name)
            if content is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            else:
                write_atomic(path, content, 0o644)
        fsync_dir(self.site_dir)
        status, output = self._run(self.test_command)
        if status != 0:
            self._undo(real, before)
            new = sorted(n for n in real if n not in before and real[n] is not None)
            changed = sorted(n for n in real if n in before)
            what = "; ".join(part for part in (
                f"new file(s) removed: {', '.join(new)}" if new else "",
                f"changed or removed file(s) restored: {', '.join(changed)}" if changed else "") if part)  # fmt: skip
            raise NginxError(f"nginx -t rejected the change ({what}): {output[-400:]}")
        if reload:
            self.reload()
        return sorted(real)

    def _undo(self, real: dict, before: dict) -> None:
        for name in real:
            path = os.path.join(self.site_dir, name)
            if name in before:
                write_atomic(path, before[name], 0o644)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        fsync_dir(self.site_dir)

    def _workers(self) -> dict:
        """{pid: process title} of the nginx master's children."""
        try:
            with open(self.pid_file, encoding="ascii") as handle:
                master = handle.read().strip()
        except OSError:
            return {}
        workers = {}
        with contextlib.suppress(OSError):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                with contextlib.suppress(OSError, IndexError):
                    with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                    if fields[1] == master:
                        with open(f"/proc/{entry}/cmdline", "rb") as handle:
                            workers[entry] = handle.read().decode("utf-8", "replace")
        return workers

    def reload(self, wait: float = 5.0) -> None:
        """Reload, then wait until the old workers stopped accepting (the next request sees the new configuration).

        An old worker told to stop renames itself "worker process is shutting down" as it closes its listening
        sockets; it may live on while long requests (websockets, streams) finish.
        """
        old = self._workers()
        status, output = self._run(self.reload_command)
        if status != 0:
            raise NginxError(f"reloading nginx failed ({' '.join(self.reload_command)}): {output[-400:]}")
        if not old:
            self.sleep(0.2)
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            now = self._workers()
            accepting = [pid for pid in old if pid in now and "shutting down" not in now[pid]]
            if not accepting and set(now) - set(old):
                time.sleep(0.02)
                return
            time.sleep(0.02)
