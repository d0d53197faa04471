# SPDX-License-Identifier: GPL-3.0-or-later
"""A fake host for the release transaction's unit tests: an in-memory engine whose 'apps' read and write
real data folders (like the stand-in: a schema marker that v2 migrates and v1 refuses), HTTP answered by
those apps directly or through the nginx sites written on disk, and a clock that sleeping advances."""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._http import Response
from ansible_collections.pinned.release.plugins.module_utils._reference import parse_reference

REPO = "registry.example/acme/openwebui"


def digest(char: str) -> str:
    return "sha256:" + char * 64


V1, V2, BROKEN, SLOW, CRASH = (f"{REPO}@{digest(c)}" for c in "12bcd")
OTHER_REPO_V1 = f"docker.io/upstream/openwebui@{digest('1')}"


@dataclass
class App:
    """How an image behaves when started on a data folder."""

    version: str
    schema: Optional[int] = 1  # None: leaves the schema alone
    ready_after: float = 0.5  # seconds after start
    healthy: bool = True
    crash: bool = False


APPS = {
    V1: App("1.0.0", 1),
    V2: App("2.0.0", 2),
    BROKEN: App("2.1.0", None, healthy=False),
    SLOW: App("1.1.0", None, ready_after=10),
    CRASH: App("9.9.9", None, crash=True),
    OTHER_REPO_V1: App("1.0.0", 1),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0  # before any real file time, so "written since" compares

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Container:
    id: str
    name: str
    image: str
    env: dict
    labels: dict
    port: tuple
    bind: tuple
    restart_policy: str
    status: str = "created"
    started_at: float = 0.0
    exit_code: int = 0
    restart_count: int = 0
    logs: list = field(default_factory=list)


class FakeEngine:
    def __init__(self, clock: Clock, images=None) -> None:
        self.clock = clock
        self.containers: dict = {}
        self.local_images: set = set(images or [])
        self.registry: set = set(APPS)
        self.faults: dict = {}  # (verb, container name, id or image) -> exception to raise, or [exception] once
        self.calls: list = []
        self._ids = itertools.count(1)

    # -------------------------------------------------------------- helpers for tests
    def by_name(self, name: str) -> Optional[Container]:
        return next((c for c in self.containers.values() if c.name == name), None)

    def _find(self, key: str) -> Optional[Container]:
        return self.containers.get(key) or self.by_name(key)

    def _fault(self, verb: str, key: str) -> None:
        self.calls.append((verb, key))
        container = self._find(key)
        names = {key, container.name if container else key}
        for name in names:
            fault = self.faults.get((verb, name))
            if isinstance(fault, list):  # one-shot faults
                fault = fault.pop(0) if fault else None
            if fault is not None:
                raise fault

    def run_by_hand(self, name: str, image: str, data_dir: str, port: int, env=None, labels=None) -> Container:
        """A container started outside the transaction (docker run by a person)."""
        container = Container(f"c{next(self._ids):04d}", name, image, dict(env or {}), dict(labels or {}),
                              (8080, "127.0.0.1", port), (data_dir, "/app/backend/data"), "unless-stopped")  # fmt: skip
        self.containers[container.id] = container
        self.local_images.add(image)
        self.start(container.id)
        return container

    # -------------------------------------------------------------- the app inside
    def _app_start(self, container: Container) -> None:
        app = APPS[container.image]
        data = container.bind[0]
        os.makedirs(data, exist_ok=True)
        marker = os.path.join(data, "schema_version")
        current = int(open(marker).read()) if os.path.exists(marker) else 0  # noqa: SIM115
        container.logs.append(f"open-webui {app.version} starting with key={container.env.get('WEBUI_SECRET_KEY')}")
        if app.crash or (app.schema is not None and current > app.schema):
            container.status, container.exit_code = "exited", 1
            container.logs.append(f"open-webui {app.version}: data schema {current} is newer; refusing to start")
            return
        if app.schema is not None:
            with open(marker, "w") as handle:
                handle.write(str(app.schema))
        container.logs.append(f"open-webui {app.version} listening on :8080")
        container.status = "running"
        container.started_at = self.clock()

    def ready(self, container: Container) -> bool:
        app = APPS[container.image]
        return container.status == "running" and app.healthy and self.clock() - container.started_at >= app.ready_after

    def health(self, container: Container) -> str:
        if container.status != "running":
            return "starting" if container.status == "created" else "none"
        app = APPS[container.image]
        if not app.healthy and self.clock() - container.started_at > 6:
            return "unhealthy"
        return "healthy" if self.ready(container) else "starting"

    # -------------------------------------------------------------- the engine verbs
    def container(self, name: str, expected=None) -> Optional[dict]:
        self.calls.append(("inspect", name))
        container = self._find(name)
        if container is None:
            return None
        ref = parse_reference(container.image, default_tag=None)
        return {
            "name": container.name,
            "id": container.id,
            "exists": True,
            "status": container.status,
            "health": self.health(container),
            "restart_count": container.restart_count,
            "exit_code": container.exit_code,
            "image": container.image,
            "image_id": "sha256:img-" + container.image[-6:],
            "digest": ref.digest if expected is None or ref.name == expected.name else None,
            "digest_source": "RepoDigests",
            "env": dict(container.env),
            "labels": dict(container.labels),
            "mounts": [f"{container.bind[0]}:{container.bind[1]}"],
            "published_ports": [f"{container.port[1]}:{container.port[2]}:{container.port[0]}"],
            "restart_policy": container.restart_policy,
            "started_at": container.started_at,
        }

    def containers_with_label(self, label: str) -> list:
        return [{"name": c.name, "id": c.id, "labels": c.labels, "status": c.status}
                for c in self.containers.values() if label in c.labels]  # fmt: skip

    def image_present(self, image: str) -> bool:
        return image in self.local_images

    def image_labels(self, image: str) -> dict:
        return {"org.opencontainers.image.version": APPS[image].version}

    def pull(self, image: str) -> None:
        self._fault("pull", image)
        if image not in self.registry:
            raise RuntimeError(f"manifest for {image} not found")
        self.local_images.add(image)

    def create(self, config: dict) -> str:
        self._fault("create", config["name"])
        if self.by_name(config["name"]):
            raise RuntimeError(f"Conflict. The container name {config['name']} is already in use")
        if config["image"] not in self.local_images:
            raise RuntimeError(f"No such image: {config['image']}")
        container = Container(f"c{next(self._ids):04d}", config["name"], config["image"], dict(config["env"]),
                              dict(config["labels"]), config["port"], config["bind"], config["restart_policy"])  # fmt: skip
        self.containers[container.id] = container
        return container.id

    def start(self, key: str) -> None:
        self._fault("start", key)
        container = self._find(key)
        if container is None:
            raise RuntimeError(f"No such container: {key}")
        for other in self.containers.values():
            if other is not container and other.status == "running" and other.port[1:] == container.port[1:]:
                raise RuntimeError(f"port {container.port[2]} is already allocated")
        self._app_start(container)

    def stop(self, key: str, timeout: int) -> None:
        self._fault("stop", key)
        container = self._find(key)
        if container is not None and container.status == "running":
            container.status, container.exit_code = "exited", 0

    def remove(self, key: str) -> None:
        self._fault("remove", key)
        container = self._find(key)
        if container is not None:
            del self.containers[container.id]

    def rename(self, key: str, new_name: str) -> None:
        self._fault("rename", key)
        container = self._find(key)
        if container is None:
            raise RuntimeError(f"No such container: {key}")
        if self.by_name(new_name):
            raise RuntimeError(f"Conflict: {new_name} is already in use")
        container.name = new_name

    def logs(self, key: str, tail: int = 20) -> str:
        container = self._find(key)
        return "\n".join(container.logs[-tail:]) if container else ""


class FakeHttp:
    """Answers like the stand-in app: directly on a container's port, or through the nginx sites on disk."""

    def __init__(self, engine: FakeEngine, site_dir: str, nginx_port: int = 80) -> None:
        self.engine = engine
        self.site_dir = site_dir
        self.nginx_port = nginx_port
        self.requests: list = []

    def _site_port(self, domain: str) -> Optional[int]:
        if not os.path.isdir(self.site_dir):
            return None
        for name in os.listdir(self.site_dir):
            text = open(os.path.join(self.site_dir, name)).read()  # noqa: SIM115
            if re.search(rf"server_name {re.escape(domain)};", text):
                match = re.search(r"proxy_pass http://127\.0\.0\.1:(\d+);", text)
                return int(match.group(1)) if match else None
        return None

    def __call__(self, method, url, headers=None, body=None, timeout=10.0, server_name=None) -> Response:
        self.requests.append((method, url, dict(headers or {})))
        match = re.match(r"https?://127\.0\.0\.1:(\d+)(/.*)", url)
        port, path = int(match.group(1)), match.group(2)
        if port == self.nginx_port:
            backend = self._site_port((headers or {}).get("Host", ""))
            if backend is None:
                return Response(error="closed without an answer")
            answer = self._app(backend, method, path)
            if answer.status == -1:
                return Response(
                    status=503, headers={"retry-after": "5", "content-type": "text/html"}, body=b"maintenance"
                )
            return answer
        return self._app(port, method, path)

    def _app(self, port: int, method: str, path: str) -> Response:
        for container in self.engine.containers.values():
            if container.port[2] == port and container.status == "running":
                if not self.engine.ready(container):
                    return Response(error="connection refused")
                app = APPS[container.image]
                if path == "/health":
                    return _json(200, {"status": True})
                if path == "/api/version":
                    return _json(200, {"version": app.version})
                if path == "/api/config":
                    return _json(200, {"name": container.env.get("WEBUI_NAME", "Open WebUI")})
                return _json(404, {"detail": "Not Found"})
        return Response(error="connection refused")


def _json(status: int, data: dict) -> Response:
    return Response(status=status, headers={"content-type": "application/json"}, body=json.dumps(data).encode())
