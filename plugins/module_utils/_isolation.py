# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tenant isolation: what one tenant's container must not have, and what two containers must not share.

A tenant is one client's data. A privileged container, one on the host's network or namespaces, one that
publishes its port beyond loopback (past nginx, its TLS and its buffering rules), or one that mounts another
tenant's data folder lets one client reach another's data or traffic. Pure functions over container facts
(``_drift.container_facts``) and the engine's listing, so the drift check and the checklist judge the same way.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Callable, Iterable, Optional

ANONYMOUS_VOLUME_RE = re.compile(r"^[0-9a-f]{64}$")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def published_parts(published: object) -> Optional[list]:
    """``[ip, host port, container port]`` of a published port written ``ip:host port:container port[/proto]`` (an
    IPv6 address keeps its colons); None when it is not written so."""
    parts = published.split("/", 1)[0].rsplit(":", 2) if isinstance(published, str) else []
    return parts if len(parts) == 3 else None


def port_address(published: str) -> str:
    """The host address of a published port written ``ip:host port:container port[/proto]``."""
    return published_parts(published)[0]


def host_port(published: str) -> Optional[int]:
    """The host port of a published port written ``ip:host port:container port[/proto]`` (None: none chosen)."""
    text = published_parts(published)[1]
    return int(text) if text.isdigit() else None


def container_problems(facts: dict, allowed_addresses: Iterable[str] = ()) -> list:
    """What in one container breaks isolation, one phrase each (empty: none).

    ``allowed_addresses``: host addresses the declaration publishes on besides loopback (a deliberate
    ``bind_address``); any other address, 0.0.0.0 first, puts the tenant past nginx.
    """
    problems = []
    if facts.get("privileged"):
        problems.append("runs privileged (--privileged): it can reach the host and every other tenant")
    network = str(facts.get("network_mode") or "")
    if network == "host":
        problems.append("is on the host's network (--network host): it shares the host's ports and interfaces")
    elif network.startswith("container:"):
        problems.append(f"shares the network of container {network.split(':', 1)[1]} (--network container:...)")
    for namespace in ("pid", "ipc", "uts"):
        mode = str(facts.get(f"{namespace}_mode") or "")
        if mode == "host":
            problems.append(f"shares the host's {namespace.upper()} namespace (--{namespace} host)")
        elif mode.startswith("container:"):
            problems.append(f"shares the {namespace.upper()} namespace of container {mode.split(':', 1)[1]} "
                            f"(--{namespace} container:...)")  # fmt: skip
    added = sorted(facts.get("cap_add") or [])
    if added:
        problems.append(f"has added capabilities {', '.join(added)} (--cap-add)")
    devices = facts.get("devices") or []
    if devices:
        problems.append(f"has the host's devices {', '.join(devices)} (--device)")
    unconfined = [opt for opt in facts.get("security_opt") or [] if "unconfined" in str(opt)]
    if unconfined:
        problems.append(f"runs without its security profile ({', '.join(unconfined)})")
    allowed = set(allowed_addresses)
    for published in facts.get("published_ports") or []:
        address = port_address(published)
        if not _is_loopback(address) and address not in allowed:
            problems.append(f"publishes {published} beyond loopback: it is reachable without nginx")
    return problems


def extra_mounts(facts: dict, declared: Iterable[str]) -> list:
    """Mounts beyond the declared ``source:destination`` ones, anonymous volumes (the image's own) left out."""
    wanted = set(declared)
    extra = []
    for mount in facts.get("mount_details") or []:
        text = f"{mount.get('source')}:{mount.get('destination')}"
        if text in wanted:
            continue
        if mount.get("type") == "volume" and ANONYMOUS_VOLUME_RE.match(str(mount.get("name") or "")):
            continue
        extra.append(text)
    return sorted(extra)


def _relation(folder: str, source: str) -> str:
    """How a mounted folder relates to a tenant's folder: it is it, holds it (a parent sees every tenant in it), or
    lies inside it; empty when they do not meet."""
    folder, source = os.path.normpath(folder), os.path.normpath(source)
    if source == folder:
        return "which is"
    if folder.startswith(source.rstrip(os.sep) + os.sep):
        return "which holds"
    if source.startswith(folder + os.sep):
        return "inside"
    return ""


def shared_problems(owners: dict, listing: list, resolve: Callable = os.path.normpath) -> dict:
    """``{tenant: [phrase]}``: other containers that mount one of a tenant's folders (its data, snapshots and env
    files), a folder holding it or one inside it, or that publish one of the tenant's host ports.

    ``owners``: tenant -> ``{"containers": names of its own containers, "folders": paths, "ports": host ports}``.
    ``listing``: the engine's listing (``name``, ``mounts`` sources, ``ports`` host ports of running containers).
    ``resolve``: how a path becomes the folder it is (``os.path.realpath`` on the host: a symlinked data root and its
    real path are one folder).
    """
    others = sorted(listing, key=lambda c: c["name"])
    # Each path resolved once (on the host a realpath is a few system calls), not once per tenant and container.
    sources = {other["name"]: [(source, resolve(source)) for source in other.get("mounts") or []] for other in others}
    found: dict = {}
    for tenant, own in sorted(owners.items()):
        phrases = []
        folders = [resolve(folder) for folder in own["folders"]]
        for other in others:
            if other["name"] in own["containers"]:
                continue
            for source, resolved in sources[other["name"]]:
                for folder in folders:
                    relation = _relation(folder, resolved)
                    if relation:
                        phrases.append(f"container {other['name']} mounts {source}, {relation} {tenant}'s folder")
            for port in sorted(set(own["ports"]) & set(other.get("ports") or [])):
                phrases.append(f"container {other['name']} also publishes {tenant}'s port {port}")
        if phrases:
            found[tenant] = phrases
    return found
