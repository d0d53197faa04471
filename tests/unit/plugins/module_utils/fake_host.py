# SPDX-License-Identifier: GPL-3.0-or-later
"""A fake host for the release transaction's unit tests: an in-memory engine whose 'apps' read and write
real data folders (like the stand-in: a schema marker that v2 migrates and v1 refuses), HTTP answered by
those apps directly or through the nginx sites written on disk, and a clock that sleeping advances."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._format import memory_bytes
from ansible_collections.pinned.release.plugins.module_utils._http import Response
from ansible_collections.pinned.release.plugins.module_utils._nginx import Nginx
from ansible_collections.pinned.release.plugins.module_utils._reference import parse_reference
from ansible_collections.pinned.release.plugins.module_utils._rollout import Rollout, Settings
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import MoveJournal
from ansible_collections.pinned.release.plugins.module_utils._secrets import SecretMask
from ansible_collections.pinned.release.plugins.module_utils._tenants import checked_specs

REPO = "registry.example/acme/openwebui"


def digest(char: str) -> str:
    return "sha256:" + char * 64


V1, V2, BROKEN, SLOW, CRASH = (f"{REPO}@{digest(c)}" for c in "12bcd")
OTHER_REPO_V1 = f"docker.io/upstream/openwebui@{digest('1')}"
IMAGE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "DATA_DIR": "/app/backend/data"}


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
    memory: int = 0
    status: str = "created"
    started_at: float = 0.0
    exit_code: int = 0
    restart_count: int = 0
    stopped_by_hand: bool = False  # docker stop: unless-stopped leaves it down after a daemon restart
    logs: list = field(default_factory=list)
    started_as: str = ""  # the reference a person typed (a tag), when not the digest reference it runs
    volume: str = ""  # the data mount is this named volume (its folder is bind[0]), not a bind mount
    files: dict = field(default_factory=dict)  # path inside the container -> text (what docker exec cat reads)


class FakeEngine:
    def __init__(self, clock: Clock, images=None) -> None:
        self.clock = clock
        self.containers: dict = {}
        self.local_images: set = set(images or [])
        self.registry: set = set(APPS)
        self.faults: dict = {}  # (verb, container name, id or image) -> exception to raise, or [exception] once
        self.calls: list = []
        self.tags: dict = {}  # tag reference -> the digest reference it names on this host
        self.unpushed: set = set()  # images built or loaded here: no repository digest
        self._ids = itertools.count(1)
        self.held_ports: dict = {}  # host port -> what holds it outside Docker's containers (a stale docker-proxy)
        # verb -> kind of the EngineCallError its next call raises: race and transient as Docker has them (a stop
        # that raced with the exit did stop; a create that timed out may have created), error before anything
        self.injected: dict = {}
        # Called after every call that changed something, with (verb, key): a test may "crash" the process there.
        self.after_change = None

    # -------------------------------------------------------------- helpers for tests
    def by_name(self, name: str) -> Optional[Container]:
        return next((c for c in self.containers.values() if c.name == name), None)

    def _find(self, key: str) -> Optional[Container]:
        return self.containers.get(key) or self.by_name(key)

    def _changed(self, verb: str, key: str) -> None:
        if self.after_change is not None:
            self.after_change(verb, key)

    def reboot(self) -> None:
        """The host restarts: every container stops; Docker starts those whose restart policy says so."""
        for container in self.containers.values():
            if container.status == "running":
                container.status, container.exit_code = "exited", 0
        for container in list(self.containers.values()):
            policy = container.restart_policy
            if policy == "always" or (policy == "unless-stopped" and not container.stopped_by_hand):
                with contextlib.suppress(EngineCallError):
                    self.start(container.id)

    def _injected(self, verb: str, done_anyway: bool = False):
        """The injected error of ``verb`` to raise now (None when there is none); ``done_anyway``: raise it after."""
        kind = self.injected.get(verb)
        if kind is None or (kind in ("race", "transient") and not done_anyway and verb in ("stop", "create")):
            return None
        del self.injected[verb]
        return EngineCallError(f"{verb}: injected {kind} error", kind)

    def _fault(self, verb: str, key: str) -> None:
        self.calls.append((verb, key))
        error = self._injected(verb)
        if error is not None:
            raise error
        container = self._find(key)
        names = {key, container.name if container else key}
        for name in names:
            fault = self.faults.get((verb, name))
            if isinstance(fault, list):  # one-shot faults
                fault = fault.pop(0) if fault else None
            if fault is not None:
                raise fault

    def run_by_hand(self, name: str, image: str, data_dir: str, port: int, env=None, labels=None, *,
                    started_as: str = "", host_ip: str = "127.0.0.1", data_path: str = "/app/backend/data",
                    volume: str = "", files=None) -> Container:  # fmt: skip
        """A container started outside the transaction (docker run by a person): by ``started_as`` (a tag of
        ``image``) when given, its data in the named ``volume`` when given."""
        container = Container(f"c{next(self._ids):04d}", name, image, {**IMAGE_ENV, **(env or {})}, dict(labels or {}),
                              (8080, host_ip, port), (data_dir, data_path), "unless-stopped",
                              started_as=started_as, volume=volume, files=dict(files or {}))  # fmt: skip
        self.containers[container.id] = container
        self.local_images.add(image)
        if started_as:
            self.tags[started_as] = image
        self.start(container.id)
        return container

    # -------------------------------------------------------------- the app inside
    def _app_start(self, container: Container) -> None:
        app = APPS[container.image]
        data = container.bind[0]
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
            "image_id": self.image_id(container.image),
            "digest": ref.digest if expected is None or ref.name == expected.name else None,
            "digest_source": "RepoDigests",
            "env": dict(container.env),
            "image_env": dict(IMAGE_ENV),
            "image_labels": {"org.opencontainers.image.version": APPS[container.image].version},
            "labels": dict(container.labels),
            "mounts": [f"{container.bind[0]}:{container.bind[1]}"],
            "published_ports": [f"{container.port[1]}:{container.port[2]}:{container.port[0]}"],
            "restart_policy": container.restart_policy,
            "memory": container.memory,
            "started_at": container.started_at,
            "mount_details": [{"type": "bind", "source": container.bind[0], "destination": container.bind[1]}],
        }

    @staticmethod
    def image_id(image: str) -> str:
        """A local image id per reference (two repositories may serve the same digest)."""
        return "sha256:img-" + hashlib.sha256(image.encode()).hexdigest()[:12]

    def inspect(self, key: str) -> Optional[dict]:
        """``docker inspect`` of a container, shaped as Docker gives it (the parts adoption reads)."""
        self._fault("inspect", key)
        container = self._find(key)
        if container is None:
            return None
        port, host_ip, host_port = container.port
        binding = {f"{port}/tcp": [{"HostIp": host_ip, "HostPort": str(host_port)}]}
        source, destination = container.bind
        mount = ({"Type": "volume", "Name": container.volume, "Source": source, "Destination": destination}
                 if container.volume else {"Type": "bind", "Source": source, "Destination": destination})  # fmt: skip
        return {
            "Id": container.id,
            "Name": "/" + container.name,
            "Image": self.image_id(container.image),
            "Config": {
                "Image": container.started_as or container.image,
                "Labels": dict(container.labels),
                "Env": [f"{k}={v}" for k, v in container.env.items()],
            },
            "State": {"Status": container.status},
            "Mounts": [mount],
            "NetworkSettings": {"Ports": binding if container.status == "running" else {}},
            "HostConfig": {
                "PortBindings": binding,
                "RestartPolicy": {"Name": container.restart_policy},
                "Memory": container.memory,
            },
        }

    def inspect_image(self, ref: str) -> Optional[dict]:
        """``docker image inspect`` by reference, tag or id; None when this host does not have it."""
        self._fault("inspect_image", ref)
        image = self.tags.get(ref) or next((i for i in self.local_images if ref in (i, self.image_id(i))), None)
        if image is None:
            return None
        return {"Id": self.image_id(image), "RepoTags": sorted(t for t, i in self.tags.items() if i == image),
                "RepoDigests": [] if image in self.unpushed else [image],
                "Config": {"Env": [f"{k}={v}" for k, v in IMAGE_ENV.items()],
                           "Labels": {"org.opencontainers.image.version": APPS[image].version}}}  # fmt: skip

    def read_file(self, key: str, path: str) -> Optional[str]:
        self._fault("exec", key)
        container = self._find(key)
        if container is None:
            return None
        if container.status != "running":
            raise EngineCallError(f"reading {path} inside container {key}: container {container.id} is not running",
                                  "race")  # fmt: skip
        return container.files.get(path)

    def containers_with_label(self, label: str) -> list:
        return [c for c in self.listing() if label in c["labels"]]

    def listing(self) -> list:
        self.calls.append(("listing", "*"))
        return [{"name": c.name, "id": c.id, "labels": c.labels, "status": c.status, "mounts": [c.bind[0]],
                 "ports": [c.port[2]] if c.status == "running" else [], "image": c.started_as or c.image,
                 "image_id": self.image_id(c.image)} for c in self.containers.values()]  # fmt: skip

    def containers_on_port(self, port: int) -> list:
        return [c for c in self.listing() if c["status"] == "running" and self._find(c["id"]).port[2] == port]

    def port_process(self, port: int):
        return self.held_ports.get(port)

    def image_present(self, image: str) -> bool:
        return image in self.local_images

    def image_labels(self, image: str) -> dict:
        return {"org.opencontainers.image.version": APPS[image].version} if image in self.local_images else {}

    def pull(self, image: str) -> None:
        self._fault("pull", image)
        if image not in self.registry:
            raise EngineCallError(f"manifest for {image} not found")
        self.local_images.add(image)

    def create(self, config: dict) -> str:
        self._fault("create", config["name"])
        if self.by_name(config["name"]):
            raise EngineCallError(
                f"creating container {config['name']}: Conflict. The container name is already in use"
            )
        if config["image"] not in self.local_images:
            raise EngineCallError(f"creating container {config['name']}: No such image: {config['image']}")
        if not os.path.isdir(config["bind"][0]):
            raise EngineCallError(f'creating container {config["name"]}: invalid mount config for type "bind": bind '
                                  f"source path does not exist: {config['bind'][0]}")  # fmt: skip
        container = Container(f"c{next(self._ids):04d}", config["name"], config["image"], {**IMAGE_ENV, **config["env"]},
                              dict(config["labels"]), config["port"], config["bind"], config["restart_policy"],
                              memory_bytes(config.get("memory")))  # fmt: skip
        self.containers[container.id] = container
        self._changed("create", container.id)
        error = self._injected("create", done_anyway=True)
        if error is not None:
            raise error
        return container.id

    def set_restart_policy(self, key: str, policy: str) -> None:
        self._fault("update", key)
        container = self._find(key)
        if container is None:
            raise EngineCallError(f"updating container {key}: No such container")
        container.restart_policy = policy
        self._changed("update", container.id)

    def start(self, key: str) -> None:
        self._fault("start", key)
        container = self._find(key)
        if container is None:
            raise EngineCallError(f"starting container {key}: No such container")
        if container.status == "running":
            return
        port = container.port[2]
        taken = port in self.held_ports or any(
            other is not container and other.status == "running" and other.port[1:] == container.port[1:]
            for other in self.containers.values()
        )
        if taken:
            raise EngineCallError(
                f"starting container {key}: Bind for 127.0.0.1:{port} failed: port is already allocated"
            )
        if not os.path.isdir(container.bind[0]):
            raise EngineCallError(
                f"starting container {key}: error mounting {container.bind[0]}: no such file or directory"
            )
        container.stopped_by_hand = False
        self._app_start(container)
        self._changed("start", container.id)

    def memory_in_use(self, key: str) -> tuple:
        container = self._find(key)
        if container is None or container.status != "running":
            return None, 0
        return 150 * 1024**2, container.memory or 2 * 1024**3  # without a limit: the host's memory

    def restart(self, key: str, timeout: int) -> None:
        self.stop(key, timeout)
        self.start(key)

    def stop(self, key: str, timeout: int) -> None:
        self._fault("stop", key)
        container = self._find(key)
        if container is not None and container.status == "running":
            container.status, container.exit_code = "exited", 0
            container.stopped_by_hand = True
            self._changed("stop", container.id)
        error = self._injected("stop", done_anyway=True)
        if error is not None:
            raise error

    def remove(self, key: str) -> None:
        self._fault("remove", key)
        container = self._find(key)
        if container is not None:
            del self.containers[container.id]
            self._changed("remove", container.id)

    def rename(self, key: str, new_name: str) -> None:
        self._fault("rename", key)
        container = self._find(key)
        if container is None:
            raise EngineCallError(f"renaming container {key}: No such container")
        if self.by_name(new_name):
            raise EngineCallError(f"renaming container {key} to {new_name}: Conflict: the name is already in use")
        container.name = new_name
        self._changed("rename", container.id)

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


# ------------------------------------------------------------------ a host whose transaction the tests drive

ROOT = Path(__file__).resolve().parents[4]
APP_DEFAULTS = yaml.safe_load((ROOT / "profiles/open-webui.yml").read_text())["runtime"]
SMOKE = [{"name": "health through nginx", "path": "/health", "status": 200, "json": {"status": True}}]


def tenant(name: str, port: int, **extra) -> dict:
    return {"name": name, "domain": f"{name}.example", "port": port, "env": {"WEBUI_NAME": name.title()},
            "secrets": {"WEBUI_SECRET_KEY": f"key-of-{name}-0123456789"}, **extra}  # fmt: skip


TENANTS = [tenant("acme", 3001), tenant("globex", 3002)]


class Host:
    """Everything one host's transaction touches, in a temporary folder."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.clock = Clock()
        self.engine = FakeEngine(self.clock)
        self.site_dir = str(tmp / "conf.d")
        self.nginx_test = ["true"]
        self.http = FakeHttp(self.engine, self.site_dir)
        self.audit: list = []
        self.app = {**APP_DEFAULTS, "data_root": str(tmp / "opt"), "scheme": "http"}
        self.journal = MoveJournal(str(tmp / "state"))

    def rollout(self, image: str, tenants=None, failpoint=None, **settings) -> Rollout:
        tenants = TENANTS if tenants is None else tenants
        specs = checked_specs(tenants, self.app, image)
        options = {"smoke_checks": SMOKE, "health_json": {"status": True}, "snapshot_exclude": ("cache",), **settings}
        nginx = Nginx(self.site_dir, test_command=self.nginx_test, reload_command=["true"],
                      pid_file=str(self.tmp / "none"), sleep=self.clock.sleep)  # fmt: skip
        mask = SecretMask(v for spec in specs for v in spec["secret_env"].values())
        return Rollout(self.engine, specs, self.app, Settings(**options), {"run_id": f"run-{self.clock():.0f}", "reason": "test"},
                       self.journal, nginx, send=self.http, audit=self.audit.append, clock=self.clock,
                       sleep=self.clock.sleep, failpoint=failpoint, mask=mask)  # fmt: skip

    def run(self, image: str, **kwargs) -> dict:
        self.clock.sleep(1)
        return self.rollout(image, **kwargs).execute()

    def data(self, name: str) -> Path:
        return self.tmp / "opt" / name / "data"

    def write(self, name: str, key: str, value: str) -> None:
        (self.data(name) / "kv").mkdir(parents=True, exist_ok=True)
        (self.data(name) / "kv" / key).write_text(value)

    def read(self, name: str, key: str) -> str:
        return (self.data(name) / "kv" / key).read_text()

    def running(self, name: str):
        container = self.engine.by_name(f"openwebui-{name}")
        return (container.image, container.status) if container else None

    def names(self) -> set:
        return {c.name for c in self.engine.containers.values()}

    def user_write(self, port: int, key: str, value: str) -> Optional[str]:
        """A user writes through nginx: into the data of whichever ready container serves ``port``; its path."""
        for container in self.engine.containers.values():
            if container.port[2] == port and self.engine.ready(container):
                folder = Path(container.bind[0]) / "kv"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / key).write_text(value)
                return str(folder / key)
        return None

    def named_asides(self, *results: dict) -> set:
        """Every set-aside data folder a result or an audit line named."""
        named = set()
        for result in results:
            for entry in [*result.get("tenants", []), *result.get("recovered", [])]:
                named |= {entry.get("set_aside"), (entry.get("writes_set_aside") or {}).get("aside")}
        for line in self.audit:
            named |= {(line.get("writes_set_aside") or {}).get("aside"), line.get("set_aside")}
        return {path for path in named if path}

    def kept(self, name: str, key: str, value: str, *results: dict) -> bool:
        """A user's write is in the tenant's live data, or in a set-aside folder a result or the audit log named."""
        for folder in [self.data(name), *(Path(a) for a in self.named_asides(*results))]:
            path = folder / "kv" / key
            if path.exists() and path.read_text() == value and (folder == self.data(name) or name in str(folder)):
                return True
        return False
