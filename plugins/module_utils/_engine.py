# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The container engine as the release transaction sees it: a few verbs over the Docker SDK.

The transaction (``_rollout``) only calls the methods of ``DockerEngine``; unit tests hand it a fake
with the same methods, so every step and fault is tested without a daemon.
"""

from __future__ import annotations

from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._docker import DockerException, NotFound
from ansible_collections.pinned.release.plugins.module_utils._drift import container_facts
from ansible_collections.pinned.release.plugins.module_utils._reference import ImageReference, parse_reference


class EngineCallError(Exception):
    """An engine call failed; the message names the call and the container or image."""


def _short(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    text = explanation if isinstance(explanation, str) and explanation else str(exc)
    return " ".join(text.split())[:300]


def container_config(spec: dict, name: str) -> dict:
    """The engine's create arguments for a tenant spec (see _tenants.tenant_spec)."""
    bind_ip, host_port, container_port = spec["published"].rsplit(":", 2)
    source, destination = spec["mount"].split(":", 1)
    return {
        "name": name,
        "image": spec["image"],
        "env": {**spec["env"], **spec["secret_env"]},
        "labels": spec["labels"],
        "port": (int(container_port), bind_ip.strip("[]"), int(host_port)),
        "bind": (source, destination),
        "restart_policy": spec["restart_policy"],
        "memory": spec.get("memory"),
        "stop_timeout": spec.get("stop_timeout", 30),
    }


class DockerEngine:
    """The Docker engine of this host, through the SDK's low-level client."""

    def __init__(self, client) -> None:
        self.client = client

    def _call(self, what: str, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except NotFound:
            raise
        except DockerException as exc:
            raise EngineCallError(f"{what}: {_short(exc)}") from exc

    def container(self, name: str, expected: Optional[ImageReference] = None) -> Optional[dict]:
        """container_facts of a container (by name or id), or None when there is none."""
        try:
            data = self.client.inspect_container(name)
        except NotFound:
            return None
        except DockerException as exc:
            raise EngineCallError(f"inspecting container {name}: {_short(exc)}") from exc
        image = None
        try:
            image = self.client.inspect_image(data.get("Image"))
        except NotFound:
            image = None
        except DockerException as exc:
            raise EngineCallError(f"inspecting the image of {name}: {_short(exc)}") from exc
        facts = container_facts(data, image, expected)
        facts["started_at"] = (data.get("State") or {}).get("StartedAt")
        facts["memory"] = (data.get("HostConfig") or {}).get("Memory") or 0
        return facts

    def containers_with_label(self, label: str) -> list:
        """[{name, id, labels, status}] of every container (running or not) carrying ``label``."""
        listing = self._call(f"listing containers with label {label}", self.client.containers, all=True,
                             filters={"label": label})  # fmt: skip
        found = []
        for item in listing:
            name = (item.get("Names") or ["/?"])[0].lstrip("/")
            found.append(
                {"name": name, "id": item["Id"], "labels": item.get("Labels") or {}, "status": item.get("State")}
            )
        return found

    def names(self) -> set:
        listing = self._call("listing containers", self.client.containers, all=True)
        return {n.lstrip("/") for c in listing for n in c.get("Names") or []}

    def image_present(self, image: str) -> bool:
        """Whether ``repository@digest`` is on this host, as that exact repository digest."""
        ref = parse_reference(image, default_tag=None)
        try:
            data = self.client.inspect_image(image)
        except NotFound:
            return False
        except DockerException as exc:
            raise EngineCallError(f"inspecting image {image}: {_short(exc)}") from exc
        for entry in data.get("RepoDigests") or []:
            try:
                found = parse_reference(entry, default_tag=None)
            except ValueError:
                continue
            if found.name == ref.name and found.digest == ref.digest:
                return True
        return False

    def image_labels(self, image: str) -> dict:
        try:
            return (self.client.inspect_image(image).get("Config") or {}).get("Labels") or {}
        except NotFound:
            return {}
        except DockerException as exc:
            raise EngineCallError(f"inspecting image {image}: {_short(exc)}") from exc

    def pull(self, image: str) -> None:
        try:
            for event in self.client.pull(image, stream=True, decode=True):
                if isinstance(event, dict) and event.get("error"):
                    raise EngineCallError(" ".join(str(event["error"]).split())[:300])
        except DockerException as exc:
            raise EngineCallError(_short(exc)) from exc

    def create(self, config: dict) -> str:
        container_port, bind_ip, host_port = config["port"]
        source, destination = config["bind"]
        host_config = self.client.create_host_config(
            port_bindings={container_port: (bind_ip, host_port)},
            binds=[f"{source}:{destination}"],
            restart_policy={"Name": config["restart_policy"]},
            mem_limit=config.get("memory") or None,
        )
        created = self._call(
            f"creating container {config['name']} from {config['image']}",
            self.client.create_container,
            image=config["image"],
            name=config["name"],
            environment=[f"{k}={v}" for k, v in sorted(config["env"].items())],
            labels=config["labels"],
            ports=[container_port],
            host_config=host_config,
            stop_timeout=config.get("stop_timeout"),
            detach=True,
        )
        return created["Id"]

    def start(self, container: str) -> None:
        self._call(f"starting container {container}", self.client.start, container)

    def stop(self, container: str, timeout: int) -> None:
        try:
            self.client.stop(container, timeout=timeout)
        except NotFound:
            return
        except DockerException as exc:
            raise EngineCallError(f"stopping container {container}: {_short(exc)}") from exc

    def remove(self, container: str) -> None:
        try:
            self.client.remove_container(container, force=True)
        except NotFound:
            return
        except DockerException as exc:
            raise EngineCallError(f"removing container {container}: {_short(exc)}") from exc

    def rename(self, container: str, new_name: str) -> None:
        self._call(f"renaming container {container} to {new_name}", self.client.rename, container, new_name)

    def logs(self, container: str, tail: int = 20) -> str:
        try:
            return self.client.logs(container, tail=tail).decode("utf-8", "replace")
        except DockerException:
            return ""
