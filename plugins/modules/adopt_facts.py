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
    description: The env variable of the app's session secret key; empty - the app keeps none (nothing is looked for).
    type: str
    default: WEBUI_SECRET_KEY
  secret_key_file:
    description: The file the app writes its generated key to, inside the container, when the env has none; empty - none.
    type: str
    default: /app/backend/.webui_secret_key
  secret_patterns:
    description:
      - Env names (shell patterns, any case) whose values are secrets.
      - A value that is a URL with userinfo - a password (C(postgres://user:password@host/db)) or a key as the user (a
        Sentry DSN) - is a secret whatever its name.
    type: list
    elements: str
    default: ["*KEY*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*PASS", "*PASS_*", "*PWD*", "*TOKEN*", "*CREDENTIAL*", "*_AUTH", "*_AUTH_*",
              "*AUTHORIZATION*", "*DSN*"]
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

from ansible_collections.pinned.release.plugins.module_utils._adopt import (
    SECRET_ENV_PATTERNS,
    AdoptionError,
    AdoptionQuery,
    adoption_facts,
    read_sites,
)
from ansible_collections.pinned.release.plugins.module_utils._docker import (
    DOCKER_ARGUMENT_SPEC,
    EngineError,
    connect,
)
from ansible_collections.pinned.release.plugins.module_utils._engine import DockerEngine, EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._module import PinnedModule
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask


def run_module(params: dict, engine) -> dict:
    query = AdoptionQuery.from_params(params)
    return adoption_facts(engine, query, read_sites(query.nginx_site_dirs))


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
        **module.result_of(
            lambda: run_module(module.params, DockerEngine(connect(module.params))),
            SecretMask([]),
            (EngineError, EngineCallError, AdoptionError),
        )
    )


if __name__ == "__main__":
    main()
