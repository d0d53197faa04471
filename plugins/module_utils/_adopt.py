# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adoption of containers started by hand: what each one runs, and what the first managed deploy would change.

Pure logic over ``docker inspect`` data and nginx site files; nothing here touches a container.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Optional

# Env names whose values are secrets (fnmatch, case-insensitive); overridable.
SECRET_ENV_PATTERNS = ("*KEY*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*TOKEN*", "*CREDENTIAL*")


def split_env(container_env: list, image_env: list, secret_patterns: tuple = SECRET_ENV_PATTERNS) -> tuple:
    """``(plain, secret)``: the variables the container was started with (the image's own defaults left out),
    split by name."""
    defaults = set(image_env or [])
    plain, secret = {}, {}
    for entry in container_env or []:
        if entry in defaults or "=" not in entry:
            continue
        name, value = entry.split("=", 1)
        if any(fnmatch.fnmatchcase(name.upper(), pattern.upper()) for pattern in secret_patterns):
            secret[name] = value
        else:
            plain[name] = value
    return plain, secret


def data_mount(mounts: list, data_path: str) -> Optional[dict]:
    """The mount that holds ``data_path`` (the deepest mount at or above it), or None: the data is in the container."""
    best = None
    target = data_path.rstrip("/") or "/"
    for mount in mounts or []:
        destination = (mount.get("Destination") or "").rstrip("/") or "/"
        holds = target == destination or target.startswith(destination.rstrip("/") + "/")
        if holds and (best is None or len(destination) > len(best["destination"])):
            best = {"kind": mount.get("Type"), "name": mount.get("Name"), "source": mount.get("Source"),
                        "destination": destination, "subpath": target[len(destination):].lstrip("/")}  # fmt: skip
    return best


def published_ports(port_bindings: dict, container_port: int) -> list:
    """``[{host_ip, host_port}]`` where the app's ``container_port`` is published."""
    found = []
    for key, bindings in (port_bindings or {}).items():
        if key.split("/")[0] != str(container_port):
            continue
        for binding in bindings or []:
            found.append({"host_ip": binding.get("HostIp") or "0.0.0.0", "host_port": int(binding.get("HostPort"))})  # noqa: S104
    return found


SERVER_BLOCK = re.compile(r"\bserver\s*\{")
SERVER_NAME = re.compile(r"(?:^|[\s;{])server_name\s+([^;]+);")
PROXY_PASS = re.compile(r"(?:^|[\s;{])proxy_pass\s+https?://(?:127\.0\.0\.1|localhost|\[::1\]|0\.0\.0\.0):(\d+)[^;]*;")
COMMENT = re.compile(r"#[^\n]*")


def _server_blocks(text: str) -> list:
    """The text of each top-level ``server { ... }`` block (braces balanced; comments removed)."""
    text = COMMENT.sub("", text)
    blocks = []
    for match in SERVER_BLOCK.finditer(text):
        depth, start = 0, match.end() - 1
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    blocks.append(text[start + 1 : index])
                    break
    return blocks


def nginx_domains(sites: dict) -> dict:
    """``{port: sorted domains}``: the ``server_name`` of each server block whose ``proxy_pass`` reaches a local port."""
    by_port: dict = {}
    for _path, text in sorted(sites.items()):
        for block in _server_blocks(text):
            names = [n for m in SERVER_NAME.findall(block) for n in m.split() if n not in ("_", '""', "localhost")]
            for port in {int(p) for p in PROXY_PASS.findall(block)}:
                by_port.setdefault(port, set()).update(names)
    return {port: sorted(names) for port, names in by_port.items()}
