#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: adopt_facts
short_description: Read what the app's hand-started containers on a host run, to adopt them as tenants
version_added: 0.2.0
description:
  - Finds the app's containers that pinned.release does not manage yet (no C(pinned.release.managed) label) - by
    O(names), or by image repository O(repository) and O(name_pattern) - and reads, for each, what a tenant
    declaration needs - the image as it runs and the exact repository digest, the env split into plain values and
    secrets (O(secret_patterns)), the secret key (from the env, or the file the app generated inside the container,
    O(secret_key_file)), the mount that holds O(data_path), the published ports, the restart policy and memory
    limit, and the domains of the host's nginx sites whose C(proxy_pass) reaches a published port.
  - Each doubt is a line in the entry's C(problems) (data inside the container, no repository digest, another
    repository, stopped, no key, no port, no domain), and C(changes) says what the first managed deploy changes
    (a tag becomes a digest, a port moves from all addresses to loopback behind nginx).
  - It never changes a container. Reading the key file runs C(cat) inside the container (C(docker exec)).
  - The result holds secret values - register it with C(no_log) (the C(adopt.yml) playbook does).
author:
  - pinned.release maintainers (@pinned-release)
extends_documentation_fragment:
  - pinned.release.docker
attributes:
  check_mode:
    support: full
    description: It only reads.
  diff_mode:
    support: none
    description: It changes nothing.
options:
  repository:
    description: The app's image repository (C(release_app_repository)); a container of another repository is reported.
    type: str
    required: true
  names:
    description: Adopt exactly these containers (by name); empty means every unmanaged container of O(repository).
    type: list
    elements: str
    default: []
  name_pattern:
    description: Only containers whose name matches this shell pattern (with O(names) empty).
    type: str
    default: "*"
  data_path:
    description: Where the app keeps its data inside the container.
    type: str
    default: /app/backend/data
  container_port:
    description: The app's port inside the container.
    type: int
    default: 8080
  secret_key_env:
    description: The env variable of the app's session secret key.
    type: str
    default: WEBUI_SECRET_KEY
  secret_key_file:
    description: The file the app writes its generated key to, inside the container, when the env has none.
    type: str
    default: /app/backend/.webui_secret_key
  secret_patterns:
    description:
      - Env names (shell patterns, any case) whose values are secrets.
      - A value that is a URL with a password in it (C(postgres://user:password@host/db)) is a secret whatever its name.
    type: list
    elements: str
    default: ["*KEY*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*TOKEN*", "*CREDENTIAL*", "*_AUTH", "*_AUTH_*", "*AUTHORIZATION*"]
  nginx_site_dirs:
    description: Folders of nginx site files to read the domains from.
    type: list
    elements: path
    default: [/etc/nginx/conf.d, /etc/nginx/sites-enabled]
"""

EXAMPLES = r"""
- name: What the hand-started Open WebUI containers run
  pinned.release.adopt_facts:
    repository: "{{ release_app_repository }}"
  register: adopted
  no_log: true
"""

RETURN = r"""
containers:
  description: One entry per container found.
  returned: always
  type: list
  elements: dict
  contains:
    container:
      description: Its name.
      type: str
      returned: always
    image:
      description: The image reference it was started with (a tag, or a digest).
      type: str
      returned: always
    digest_ref:
      description: C(repository@sha256:...) of the image it runs, from O(repository); null when there is none.
      type: str
      returned: always
    env:
      description: Plain env values it was started with (the image's own defaults left out).
      type: dict
      returned: always
    secrets:
      description: Secret env values, and the key read from O(secret_key_file).
      type: dict
      returned: always
    secret_key_source:
      description: C(env), C(file) or null.
      type: str
      returned: always
    data:
      description: The mount holding O(data_path) - C(kind) (volume or bind), C(name), C(source), C(destination), C(subpath); null when none does.
      type: dict
      returned: always
    ports:
      description: C(host_ip) and C(host_port) where O(container_port) is published.
      type: list
      elements: dict
      returned: always
    domains:
      description: The nginx C(server_name)s that proxy to one of its ports.
      type: list
      elements: str
      returned: always
    sites:
      description: The nginx site files (written by hand) that proxy to one of its ports.
      type: list
      elements: str
      returned: always
    tls:
      description: The certificate and key files its hand-written site serves HTTPS with (C(cert), C(key)), or null.
      type: dict
      returned: always
    restart_policy:
      description: Its restart policy.
      type: str
      returned: always
    memory:
      description: Its memory limit (C(512m)), or null.
      type: str
      returned: always
    problems:
      description: What stops or clouds its adoption, each with what to do.
      type: list
      elements: str
      returned: always
    changes:
      description: What the first managed deploy changes for it.
      type: list
      elements: str
      returned: always
conflicts:
  description: Containers of this host claiming the same domain or port.
  returned: always
  type: list
  elements: str
"""

import fnmatch
import os

from ansible_collections.pinned.release.plugins.module_utils._adopt import (
    SECRET_ENV_PATTERNS,
    adoption_entry,
    fleet_conflicts,
    nginx_domains,
    nginx_sites,
    nginx_tls,
    repository_of,
)
from ansible_collections.pinned.release.plugins.module_utils._docker import (
    DOCKER_ARGUMENT_SPEC,
    DockerException,
    EngineError,
    NotFound,
    connect,
)
from ansible_collections.pinned.release.plugins.module_utils._module import PinnedModule
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.module_utils._tenants import MANAGED_LABEL


def read_sites(folders: list) -> dict:
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


def read_key_file(client, container: str, path: str) -> str:
    """The key the app generated inside the container ('' when there is none)."""
    try:
        run = client.exec_create(container, ["cat", path], stdout=True, stderr=False)
        output = client.exec_start(run["Id"])
        code = client.exec_inspect(run["Id"]).get("ExitCode")
    except DockerException:
        return ""
    return output.decode("utf-8", "replace").strip() if code == 0 else ""


def wanted(client, item: dict, params: dict) -> bool:
    name = (item.get("Names") or ["/?"])[0].lstrip("/")
    if (item.get("Labels") or {}).get(MANAGED_LABEL):
        return False
    if params["names"]:
        return name in params["names"]
    if not fnmatch.fnmatchcase(name, params["name_pattern"]):
        return False
    if repository_of(item.get("Image") or "") == params["repository"]:
        return True
    try:
        image = client.inspect_image(item.get("ImageID") or item.get("Image"))
    except DockerException:
        return False
    references = (image.get("RepoDigests") or []) + (image.get("RepoTags") or [])
    return any(repository_of(r) == params["repository"] for r in references)


def run_module(params: dict, client) -> dict:
    settings = {key: params[key] for key in ("data_path", "container_port", "secret_key_env", "secret_patterns")}
    sites = read_sites(params["nginx_site_dirs"])
    domains, site_files, tls_files = nginx_domains(sites), nginx_sites(sites), nginx_tls(sites)
    listing = client.containers(all=True)
    found = {(i.get("Names") or ["/?"])[0].lstrip("/") for i in listing}
    missing = [n for n in params["names"] if n not in found]
    if missing:
        raise EngineError(f"no container named {', '.join(missing)} on this host: check names (docker ps -a)")
    entries = []
    for item in listing:
        if not wanted(client, item, params):
            continue
        container = client.inspect_container(item["Id"])
        try:
            image = client.inspect_image(container.get("Image"))
        except NotFound:
            image = None
        env_names = {e.split("=", 1)[0] for e in (container.get("Config") or {}).get("Env") or []}
        key = ""
        if params["secret_key_env"] not in env_names and (container.get("State") or {}).get("Status") == "running":
            key = read_key_file(client, item["Id"], params["secret_key_file"])
        entries.append(
            adoption_entry(
                container, image, params["repository"], settings, domains, key or None, site_files, tls_files
            )
        )
    entries.sort(key=lambda e: e["container"])
    return {"changed": False, "containers": entries, "conflicts": fleet_conflicts(entries)}


def main() -> None:
    module = PinnedModule(
        argument_spec={
            "repository": {"type": "str", "required": True},
            "names": {"type": "list", "elements": "str", "default": []},
            "name_pattern": {"type": "str", "default": "*"},
            "data_path": {"type": "str", "default": "/app/backend/data"},
            "container_port": {"type": "int", "default": 8080},
            "secret_key_env": {"type": "str", "default": "WEBUI_SECRET_KEY", "no_log": False},
            "secret_key_file": {"type": "str", "default": "/app/backend/.webui_secret_key", "no_log": False},
            "secret_patterns": {
                "type": "list",
                "elements": "str",
                "default": list(SECRET_ENV_PATTERNS),
                "no_log": False,
            },
            "nginx_site_dirs": {
                "type": "list",
                "elements": "path",
                "default": ["/etc/nginx/conf.d", "/etc/nginx/sites-enabled"],
            },
            **DOCKER_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    module.exit_json(
        **module.result_of(lambda: run_module(module.params, connect(module.params)), SecretMask([]), (EngineError,))
    )


if __name__ == "__main__":
    main()
