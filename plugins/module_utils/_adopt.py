# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adoption of containers started by hand: what each one runs, and what the first managed deploy would change.

Logic over ``docker inspect`` data and nginx site files; ``adoption_facts`` reads them through the engine
(``_engine.DockerEngine``, a fake in unit tests) and changes no container.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._tenants import MANAGED_LABEL

# Env names whose values are secrets (fnmatch, case-insensitive); overridable. A value that is a switch (true, false,
# on, off, yes, no, 0, 1) or empty is never one, whatever its name: WEBUI_AUTH=False, ENABLE_API_KEY=true.
SECRET_ENV_PATTERNS = ("*KEY*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*PASS", "*PASS_*", "*PWD*", "*TOKEN*",
                       "*CREDENTIAL*", "*_AUTH", "*_AUTH_*", "*AUTHORIZATION*", "*DSN*")  # fmt: skip
SWITCH_VALUES = ("", "true", "false", "on", "off", "yes", "no", "0", "1")
# A value that carries a secret whatever its name: a URL with userinfo - a password (DATABASE_URL, REDIS_URL, ...) or a
# key alone as the user (a Sentry DSN).
PASSWORD_IN_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s]+@")


def split_env(container_env: list, image_env: list, secret_patterns: tuple = SECRET_ENV_PATTERNS) -> tuple:
    """``(plain, secret)``: the variables the container was started with (the image's own defaults left out),
    split by name, and by value: a URL holding a password is a secret under any name."""
    defaults = set(image_env or [])
    plain, secret = {}, {}
    for entry in container_env or []:
        if entry in defaults or "=" not in entry:
            continue
        name, value = entry.split("=", 1)
        by_name = value.strip().lower() not in SWITCH_VALUES and any(
            fnmatch.fnmatchcase(name.upper(), pattern.upper()) for pattern in secret_patterns
        )
        if by_name or PASSWORD_IN_URL.search(value):
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


LISTEN_TLS = re.compile(r"(?:^|[\s;{])listen\s+[^;]*\b(?:ssl|443)\b[^;]*;")
TLS_FILE = re.compile(r"(?:^|[\s;{])(ssl_certificate|ssl_certificate_key)\s+([^;\s]+)\s*;")


def _proxies(sites: dict):
    """``(path, server names, local ports, block)`` of each server block that proxies to a local port."""
    for path, text in sorted(sites.items()):
        for block in _server_blocks(text):
            names = [n for m in SERVER_NAME.findall(block) for n in m.split() if n not in ("_", '""', "localhost")]
            ports = {int(p) for p in PROXY_PASS.findall(block)}
            if ports:
                yield path, names, ports, block


def _per_port(sites: dict, values) -> dict:
    """``{port: sorted values}`` over the server blocks proxying to a local port; ``values(path, names, block)``."""
    by_port: dict = {}
    for path, names, ports, block in _proxies(sites):
        for port in ports:
            by_port.setdefault(port, set()).update(values(path, names, block))
    return {port: sorted(found) for port, found in by_port.items()}


def nginx_domains(sites: dict) -> dict:
    """``{port: sorted domains}``: the ``server_name`` of each server block whose ``proxy_pass`` reaches a local port."""
    return _per_port(sites, lambda _path, names, _block: names)


def nginx_sites(sites: dict) -> dict:
    """``{port: sorted site files}``: the files whose server blocks proxy to a local port."""
    return _per_port(sites, lambda path, _names, _block: [path])


def nginx_tls(sites: dict) -> dict:
    """``{port: sorted (certificate, key)}``: the files each server block proxying to a local port serves HTTPS with
    (quotes taken off); a block that listens for TLS without naming both (an include) gives ``("", "")``."""

    def tls(_path, _names, block) -> list:
        files = {directive: path.strip("'\"") for directive, path in TLS_FILE.findall(block)}
        if files.get("ssl_certificate") and files.get("ssl_certificate_key"):
            return [(files["ssl_certificate"], files["ssl_certificate_key"])]
        return [("", "")] if files or LISTEN_TLS.search(block) else []

    return {port: found for port, found in _per_port(sites, tls).items() if found}


def repository_of(reference: str) -> str:
    """``registry/repo`` of ``registry/repo:tag`` or ``registry/repo@sha256:...`` (a port in the registry kept)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def adoption_entry(container: dict, image: Optional[dict], repository: str, settings: dict, domains_by_port: dict,
                   key_from_file: Optional[str], sites_by_port: Optional[dict] = None,
                   tls_by_port: Optional[dict] = None) -> dict:  # fmt: skip
    """What a hand-started container runs, as a tenant declaration plus what is uncertain about it.

    ``container``/``image``: ``docker inspect`` of both. ``settings``: ``data_path``, ``container_port``,
    ``secret_key_env``, ``secret_patterns``. ``key_from_file``: the generated key read inside the container.
    ``sites_by_port``: the hand-written nginx site files per local port (``nginx_sites``); ``tls_by_port``: their
    certificate files (``nginx_tls``), carried over to the tenant.
    """
    config, host_config, state = (
        container.get("Config") or {},
        container.get("HostConfig") or {},
        container.get("State") or {},
    )
    name = (container.get("Name") or "").lstrip("/")
    runs_as = config.get("Image") or ""
    digests = [d for d in (image or {}).get("RepoDigests") or [] if repository_of(d) == repository]
    plain, secret = split_env(config.get("Env") or [], ((image or {}).get("Config") or {}).get("Env") or [],
                              tuple(settings["secret_patterns"]))  # fmt: skip
    key_env = settings["secret_key_env"]
    if key_env and key_env not in secret and key_from_file:
        secret[key_env] = key_from_file
    ports = published_ports((container.get("NetworkSettings") or {}).get("Ports") or host_config.get("PortBindings") or {},
                            settings["container_port"])  # fmt: skip
    mount = data_mount(container.get("Mounts") or [], settings["data_path"])
    domains = sorted({d for p in ports for d in domains_by_port.get(p["host_port"], [])})
    site_files = sorted({f for p in ports for f in (sites_by_port or {}).get(p["host_port"], [])})
    problems, changes = [], []
    if repository_of(runs_as) != repository and not digests:
        problems.append(
            f"runs {runs_as}, not from {repository}: adopt it only once release_app_repository names its repository"
        )
    elif not digests:
        problems.append(f"its image {runs_as} has no repository digest from {repository} (built or loaded locally): "
                        "push it to the registry, or deploy a released digest instead")  # fmt: skip
    if state.get("Status") != "running":
        problems.append(f"it is {state.get('Status') or 'not running'}: start it, or leave it out of the adoption")
    if mount is None:
        problems.append(f"its data ({settings['data_path']}) is inside the container, on no volume or bind mount: "
                        f"replacing it would delete the data; copy it out first (docker cp {name}:{settings['data_path']} ...)")  # fmt: skip
    if key_env and key_env not in secret:  # '' : the app keeps no key (generic-http)
        problems.append(f"no {key_env} in its env nor in the container: every user would be logged out by a new key")
    if not ports:
        problems.append(f"publishes no port for {settings['container_port']}: say which port it should get")
    if not domains:
        problems.append("no nginx server_name proxies to its port: give it a domain")
    elif len(domains) > 1:
        problems.append(f"its nginx site serves {len(domains)} names ({', '.join(domains)}) and a tenant has one domain: "
                        "keep one server_name in the site (redirect the others in a site of your own), then re-run")  # fmt: skip
    pairs = sorted({pair for p in ports for pair in (tls_by_port or {}).get(p["host_port"], [])})
    tls = {"cert": pairs[0][0], "key": pairs[0][1]} if len(pairs) == 1 and all(pairs[0]) else None
    if ("", "") in pairs:
        problems.append("its nginx site serves HTTPS but does not name both its ssl_certificate and "
                        "ssl_certificate_key itself (an include?): write them into the site, then re-run")  # fmt: skip
    elif len(pairs) > 1:
        problems.append(f"its nginx sites serve HTTPS with {len(pairs)} certificates ({', '.join(c for c, _k in pairs)}) "
                        "and a tenant has one: keep one certificate and key for its domain, then re-run")  # fmt: skip
    if not runs_as.count("@"):
        changes.append(
            f"runs by tag ({runs_as}): pinned to its digest {digests[0].split('@', 1)[1] if digests else '?'}"
        )
    changes.extend(f"port {p['host_port']} moves from {p['host_ip']} to loopback behind nginx"
                   for p in ports if p["host_ip"] not in ("127.0.0.1", "::1"))  # fmt: skip
    memory = host_config.get("Memory") or 0
    key_source = (("env" if split_env(config.get("Env") or [], [], (key_env,))[1] else "file" if key_from_file else None)
                  if key_env else None)  # fmt: skip
    return {
        "container": name,
        "image": runs_as,
        "digest_ref": digests[0] if digests else None,
        "running": state.get("Status") == "running",
        "env": plain,
        "secrets": secret,
        "secret_key_source": key_source,
        "data": mount,
        "ports": ports,
        "domains": domains,
        "sites": site_files,
        "tls": tls,
        "restart_policy": (host_config.get("RestartPolicy") or {}).get("Name") or "no",
        "memory": f"{memory // (1024 * 1024)}m" if memory else None,
        "problems": problems,
        "changes": changes,
    }


def fleet_conflicts(entries: list) -> list:
    """Two containers of a host that claim the same domain or the same port."""
    conflicts, seen = [], {}
    for entry in entries:
        claims = [f"domain {d}" for d in entry["domains"]] + [f"port {p['host_port']}" for p in entry["ports"]]
        for claim in claims:
            if claim in seen and seen[claim] != entry["container"]:
                conflicts.append(f"{seen[claim]} and {entry['container']} both claim {claim}: adopt one of them")
            seen.setdefault(claim, entry["container"])
    return conflicts


class AdoptionError(Exception):
    """What was asked cannot be read on this host; the message says what to do."""


@dataclass(frozen=True)
class AdoptionQuery:
    """Which containers to read (the adopt_facts options) and how the app is laid out in them."""

    repository: str
    names: tuple = ()
    name_pattern: str = "*"
    data_path: str = "/app/backend/data"
    container_port: int = 8080
    secret_key_env: str = "WEBUI_SECRET_KEY"  # noqa: S105 - the name of the variable, not a secret
    secret_key_file: str = "/app/backend/.webui_secret_key"  # noqa: S105 - where the app keeps it
    secret_patterns: tuple = SECRET_ENV_PATTERNS
    nginx_site_dirs: tuple = ("/etc/nginx/conf.d", "/etc/nginx/sites-enabled")

    @classmethod
    def from_params(cls, params: dict) -> AdoptionQuery:
        fields = cls.__dataclass_fields__
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items() if k in fields})

    @property
    def settings(self) -> dict:
        """What ``adoption_entry`` reads of the query."""
        return {"data_path": self.data_path, "container_port": self.container_port,
                "secret_key_env": self.secret_key_env, "secret_patterns": list(self.secret_patterns)}  # fmt: skip


def read_sites(folders: tuple) -> dict:
    """``{path: text}`` of the files in the nginx site folders (a folder that is not there, or a file that cannot be
    read, is left out)."""
    sites = {}
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                try:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        sites[path] = handle.read()
                except OSError:
                    continue
    return sites


def _of_the_app(engine, item: dict, query: AdoptionQuery) -> bool:
    """Whether a container of the listing is one to adopt: unmanaged, named or matching, from the app's repository
    (as it was started, or by what its image is known as)."""
    if item["labels"].get(MANAGED_LABEL):
        return False
    if query.names:
        return item["name"] in query.names
    if not fnmatch.fnmatchcase(item["name"], query.name_pattern):
        return False
    if repository_of(item["image"]) == query.repository:
        return True
    try:
        image = engine.inspect_image(item["image_id"] or item["image"])
    except EngineCallError:
        return False
    references = ((image or {}).get("RepoDigests") or []) + ((image or {}).get("RepoTags") or [])
    return any(repository_of(r) == query.repository for r in references)


def _generated_key(engine, container: str, path: str) -> str:
    """The key the app generated inside the container ('' when it cannot be read there)."""
    try:
        return (engine.read_file(container, path) or "").strip()
    except EngineCallError:
        return ""


def adoption_facts(engine, query: AdoptionQuery, sites: dict) -> dict:
    """What each unmanaged container of the app on this host runs (``adoption_entry``), and their conflicts.

    ``sites``: the host's nginx site files (``read_sites``)."""
    domains, site_files, tls_files = nginx_domains(sites), nginx_sites(sites), nginx_tls(sites)
    listing = engine.listing()
    missing = [n for n in query.names if n not in {item["name"] for item in listing}]
    if missing:
        raise AdoptionError(f"no container named {', '.join(missing)} on this host: check names (docker ps -a)")
    entries = []
    for item in listing:
        if not _of_the_app(engine, item, query):
            continue
        container = engine.inspect(item["id"])
        if container is None:  # removed since the listing
            if item["name"] in query.names:
                raise AdoptionError(f"container {item['name']} was removed while this host was read: check it "
                                    "(docker ps -a) and run again")  # fmt: skip
            continue
        image = engine.inspect_image(container.get("Image"))
        env_names = {e.split("=", 1)[0] for e in (container.get("Config") or {}).get("Env") or []}
        key = ""
        running = (container.get("State") or {}).get("Status") == "running"
        if query.secret_key_env and query.secret_key_file and query.secret_key_env not in env_names and running:
            key = _generated_key(engine, item["id"], query.secret_key_file)
        entries.append(adoption_entry(container, image, query.repository, query.settings, domains, key or None,
                                      site_files, tls_files))  # fmt: skip
    entries.sort(key=lambda e: e["container"])
    return {"changed": False, "containers": entries, "conflicts": fleet_conflicts(entries)}
