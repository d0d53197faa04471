# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The container engine as the release transaction sees it: a few verbs over the Docker SDK.

The transaction only calls the methods of ``DockerEngine``; unit tests hand it a fake with the same
methods, so every step and fault is tested without a daemon. Every failure is an ``EngineCallError``
whose ``kind`` says how to take it: ``race`` (Docker raced with the container's own exit: a kill or
remove of a container that just stopped), ``transient`` (a timeout, the daemon busy: worth a bounded
retry) or ``error``.
"""

from __future__ import annotations

import re
import subprocess
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._docker import (
    DockerException,
    Mount,
    NotFound,
    RequestException,
)
from ansible_collections.pinned.release.plugins.module_utils._drift import container_facts
from ansible_collections.pinned.release.plugins.module_utils._reference import ImageReference, parse_reference
from ansible_collections.pinned.release.plugins.module_utils._watch import docker_log_lines

# Docker's own words when a call raced with a container's exit, or could go through a moment later.
RACE_RE = re.compile(r"is not running|is already stopped|is restarting, wait until", re.IGNORECASE)
TRANSIENT_RE = re.compile(
    r"already in progress|timed? ?out|deadline exceeded|temporarily unavailable|try again|connection (reset|aborted)",
    re.IGNORECASE,
)
PORT_TAKEN_RE = re.compile(r"port is already allocated|address already in use", re.IGNORECASE)


class EngineCallError(Exception):
    """An engine call failed; the message names the call and the container or image."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


def _short(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = explanation if isinstance(explanation, str) and explanation else str(exc)
    return " ".join(text.split())[:300]


def error_kind(exc: BaseException) -> str:
    """``race``, ``transient`` or ``error`` for an exception the SDK raised."""
    if isinstance(exc, RequestException):
        return "transient"  # a timeout or a dropped connection to the daemon: the call may or may not have happened
    text = _short(exc)
    if RACE_RE.search(text):
        return "race"
    if TRANSIENT_RE.search(text):
        return "transient"
    return "error"


def container_config(spec: dict, name: str) -> dict:
    """The engine's create arguments for a tenant spec (see _tenants.tenant_spec).

    No restart policy: a container becomes one Docker restarts on its own only once it is committed, so a
    host restart in the middle of a move never starts a version that was not verified.
    """
    bind_ip, host_port, container_port = spec["published"].rsplit(":", 2)
    source, destination = spec["mount"].split(":", 1)
    return {
        "name": name,
        "image": spec["image"],
        "env": {**spec["env"], **spec["secret_env"]},
        "labels": spec["labels"],
        "port": (int(container_port), bind_ip.strip("[]"), int(host_port)),
        "bind": (source, destination),
        "restart_policy": "no",
        "memory": spec.get("memory"),
        "stop_timeout": spec.get("stop_timeout", 30),
    }


def listening_process(port: int) -> Optional[str]:
    """What listens on TCP ``port`` on this host (``ss``), e.g. ``users:(("docker-proxy",pid=812,fd=4))``."""
    try:
        found = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5,
                               check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    for line in found.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            return " ".join([fields[3], *fields[5:]]).strip()
    return None


class DockerEngine:
    """The Docker engine of this host, through the SDK's low-level client."""

    def __init__(self, client) -> None:
        self.client = client

    def _call(self, what: str, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except NotFound:
            raise
        except (DockerException, RequestException) as exc:
            raise EngineCallError(f"{what}: {_short(exc)}", error_kind(exc)) from exc

    def container(self, name: str, expected: Optional[ImageReference] = None) -> Optional[dict]:
        """container_facts of a container (by name or id), or None when there is none."""
        try:
            data = self._call(f"inspecting container {name}", self.client.inspect_container, name)
        except NotFound:
            return None
        try:
            image = self._call(f"inspecting the image of {name}", self.client.inspect_image, data.get("Image"))
        except NotFound:
            image = None
        return container_facts(data, image, expected)

    def inspect(self, container: str) -> Optional[dict]:
        """``docker inspect`` of a container (by name or id), whole, or None when there is none."""
        try:
            return self._call(f"inspecting container {container}", self.client.inspect_container, container)
        except NotFound:
            return None

    def inspect_image(self, image: str) -> Optional[dict]:
        """``docker image inspect`` of an image (by reference or id), whole, or None when this host does not have it."""
        try:
            return self._call(f"inspecting image {image}", self.client.inspect_image, image)
        except NotFound:
            return None

    def read_file(self, container: str, path: str) -> Optional[str]:
        """The text of ``path`` inside the running ``container`` (``cat`` through ``docker exec``; changes nothing), or
        None when there is no such file (or no such container)."""
        what = f"reading {path} inside container {container}"
        try:
            run = self._call(what, self.client.exec_create, container, ["cat", path], stdout=True, stderr=False)
            output = self._call(what, self.client.exec_start, run["Id"])
            code = self._call(what, self.client.exec_inspect, run["Id"]).get("ExitCode")
        except NotFound:
            return None
        return output.decode("utf-8", "replace") if code == 0 else None

    def containers_with_label(self, label: str) -> list:
        """[{name, id, labels, status}] of every container (running or not) carrying ``label``."""
        listing = self._call(f"listing containers with label {label}", self.client.containers, all=True,
                             filters={"label": label})  # fmt: skip
        return [_summary(item) for item in listing]

    def listing(self) -> list:
        """[{name, id, labels, status, mounts (sources), ports (host ports, running only), image (as it was started:
        a reference or an id), image_id}] of every container."""
        return [_summary(item) for item in self._call("listing containers", self.client.containers, all=True)]

    def containers_on_port(self, port: int) -> list:
        """[{name, id, labels, status}] of the running containers that publish host port ``port``."""
        listing = self._call("listing running containers", self.client.containers)
        return [_summary(item) for item in listing
                if any(p.get("PublicPort") == port for p in item.get("Ports") or [])]  # fmt: skip

    def port_process(self, port: int) -> Optional[str]:
        return listening_process(port)

    def image_present(self, image: str) -> bool:
        """Whether ``repository@digest`` is on this host, as that exact repository digest."""
        ref = parse_reference(image, default_tag=None)
        try:
            data = self._call(f"inspecting image {image}", self.client.inspect_image, image)
        except NotFound:
            return False
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
            data = self._call(f"inspecting image {image}", self.client.inspect_image, image)
        except NotFound:
            return {}
        return (data.get("Config") or {}).get("Labels") or {}

    def pull(self, image: str) -> None:
        try:
            for event in self.client.pull(image, stream=True, decode=True):
                if isinstance(event, dict) and event.get("error"):
                    raise EngineCallError(" ".join(str(event["error"]).split())[:300])
        except (DockerException, RequestException) as exc:
            raise EngineCallError(_short(exc), error_kind(exc)) from exc

    def create(self, config: dict) -> str:
        container_port, bind_ip, host_port = config["port"]
        source, destination = config["bind"]
        host_config = self.client.create_host_config(
            port_bindings={container_port: (bind_ip, host_port)},
            # A bind mount (not Binds): a missing source folder is an error, never an empty folder made for the app.
            mounts=[Mount(target=destination, source=source, type="bind")],
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

    def set_restart_policy(self, container: str, policy: str) -> None:
        self._call(f"setting the restart policy of {container} to {policy}", self.client.update_container,
                   container, restart_policy={"Name": policy})  # fmt: skip

    def memory_in_use(self, container: str) -> tuple:
        """(bytes the container uses as ``docker stats`` counts them - the page cache it can drop left out - or None
        when the engine does not say (a stopped container), the most it may use: its limit, else the host's memory)."""
        stats = self._call(f"reading the memory of container {container}", self.client.stats, container, stream=False)
        memory = (stats or {}).get("memory_stats") or {}
        if memory.get("usage") is None:
            return None, 0
        detail = memory.get("stats") or {}
        cache = detail.get("inactive_file", detail.get("total_inactive_file", 0)) or 0  # cgroup v2, else v1
        return max(0, int(memory["usage"]) - int(cache)), int(memory.get("limit") or 0)

    def restart(self, container: str, timeout: int) -> None:
        self._call(f"restarting container {container}", self.client.restart, container, timeout=timeout)

    def start(self, container: str) -> None:
        self._call(f"starting container {container}", self.client.start, container)

    def stop(self, container: str, timeout: int) -> None:
        try:
            self._call(f"stopping container {container}", self.client.stop, container, timeout=timeout)
        except NotFound:
            return

    def remove(self, container: str) -> None:
        try:
            self._call(f"removing container {container}", self.client.remove_container, container, force=True)
        except NotFound:
            return

    def rename(self, container: str, new_name: str) -> None:
        self._call(f"renaming container {container} to {new_name}", self.client.rename, container, new_name)

    def log_lines_since(self, container: str, since: float) -> list:
        """[(Docker's timestamp, line)] the container logged since ``since`` (epoch seconds; none when it is gone)."""
        try:
            raw = self._call(f"reading the logs of container {container}", self.client.logs, container,
                             since=int(since), timestamps=True)  # fmt: skip
        except NotFound:
            return []
        return docker_log_lines(raw)

    def logs(self, container: str, tail: int = 20) -> str:
        try:
            return self.client.logs(container, tail=tail).decode("utf-8", "replace")
        except (DockerException, RequestException):
            return ""


def _summary(item: dict) -> dict:
    name = (item.get("Names") or ["/?"])[0].lstrip("/")
    return {"name": name, "id": item["Id"], "labels": item.get("Labels") or {}, "status": item.get("State"),
            "mounts": sorted(m["Source"] for m in item.get("Mounts") or [] if m.get("Source")),
            "ports": sorted({p["PublicPort"] for p in item.get("Ports") or [] if p.get("PublicPort")}),
            "image": item.get("Image") or "", "image_id": item.get("ImageID") or ""}  # fmt: skip
