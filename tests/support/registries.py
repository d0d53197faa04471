# SPDX-License-Identifier: GPL-3.0-or-later
"""Real docker-registry instances for the resolve_digest tests: TLS, basic auth, token auth.

Each runs Debian's docker-registry on a free loopback port with its own storage;
images are copied in from the lab registry with skopeo.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import http.server
import json
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.lab import REGISTRY

USERS = {"alice": "wonderland"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_ca_and_cert(directory: Path, common_name: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned.release test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    # The CA alone in its folder: skopeo's --cert-dir reads *.crt as CAs and *.key as client keys.
    (directory / "ca").mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = directory / "ca/ca.crt", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


class TokenIssuer:
    """A minimal token service as the distribution token auth spec describes it.

    Repositories under ``public/`` are pullable anonymously, ``private/`` needs
    alice, and ``secret/`` is denied to everybody (HTTP 403).
    """

    def __init__(self, directory: Path, service: str, issuer: str):
        self.service, self.issuer = service, issuer
        self.requests: list = []
        now = datetime.datetime.now(datetime.timezone.utc)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned.release token signer")])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.rootcertbundle = directory / "token-signer.pem"
        self.rootcertbundle.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        issuer_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _sep, password = base64.b64decode(header[6:]).decode().partition(":")
                    if USERS.get(name) != password:
                        self._answer(401, {"details": "bad credentials"})
                        return
                    user = name
                issuer_self.requests.append({"user": user, "scope": query.get("scope", [])})
                access = []
                for scope in query.get("scope", []):
                    kind, repo, _actions = scope.split(":", 2)
                    if repo.startswith("secret/"):
                        self._answer(403, {"details": "denied"})
                        return
                    if repo.startswith("public/") or (repo.startswith("private/") and user):
                        access.append({"type": kind, "name": repo, "actions": ["pull"]})
                self._answer(200, {"token": issuer_self.sign(user or "", access), "expires_in": 300})

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def sign(self, subject: str, access: list) -> str:
        now = int(time.time())
        cert_der = self._cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(cert_der).decode()]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def stop(self):
        self._server.shutdown()


@dataclass
class Registry:
    name: str
    port: int
    directory: Path
    process: subprocess.Popen
    ca_path: Path | None = None
    tls: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def log(self) -> str:
        return (self.directory / "registry.log").read_text(errors="replace")


def start_registry(
    directory: Path, name: str, tls: bool = False, htpasswd: bool = False, token: TokenIssuer | None = None
) -> Registry:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(directory / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    ca_path = None
    if tls:
        ca_path, cert, key = make_ca_and_cert(directory / "tls")
        config["http"]["tls"] = {"certificate": str(cert), "key": str(key)}
    if htpasswd:
        hashed = subprocess.run(
            ["htpasswd", "-nbB", "alice", USERS["alice"]], capture_output=True, text=True, check=True
        ).stdout.strip()
        (directory / "htpasswd").write_text(hashed + "\n")
        config["auth"] = {"htpasswd": {"realm": "pinned-test", "path": str(directory / "htpasswd")}}
    if token:
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.rootcertbundle),
            }
        }
    # The registry reads YAML; JSON is YAML.
    (directory / "config.yml").write_text(json.dumps(config))
    log = open(directory / "registry.log", "w")  # noqa: SIM115 - stays open for the registry's lifetime
    process = subprocess.Popen(["docker-registry", "serve", str(directory / "config.yml")], stdout=log, stderr=log)
    registry = Registry(name, port, directory, process, ca_path, tls)
    scheme = "https" if tls else "http"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            import ssl

            context = ssl.create_default_context(cafile=str(ca_path)) if tls else None
            urllib.request.urlopen(f"{scheme}://{registry.address}/v2/", timeout=2, context=context)
            return registry
        except urllib.error.HTTPError:
            return registry  # 401 from an auth-protected registry: it is up
        except OSError:
            time.sleep(0.2)
    registry.stop()
    raise RuntimeError(f"registry {name} did not start:\n{registry.log()}")


def copy_image(source_tag: str, dest: str, dest_args: list | None = None) -> None:
    """skopeo copy from the lab registry into a test registry."""
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", *(dest_args or []),
         f"docker://{REGISTRY}/pinned/openwebui:{source_tag}", f"docker://{dest}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def push_index(registry: str, repository: str, tag: str, platforms: dict) -> str:
    """PUT an OCI image index over manifests already in the repository; returns its digest."""
    manifests = []
    for platform, source_tag in platforms.items():
        with urllib.request.urlopen(
            urllib.request.Request(
                f"http://{registry}/v2/{repository}/manifests/{source_tag}",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            ),
            timeout=10,
        ) as response:
            body = response.read()
            media_type = response.headers["Content-Type"]
            digest = response.headers["Docker-Content-Digest"]
        os_, arch, *variant = platform.split("/")
        entry = {
            "mediaType": media_type,
            "digest": digest,
            "size": len(body),
            "platform": {"os": os_, "architecture": arch},
        }
        if variant:
            entry["platform"]["variant"] = variant[0]
        manifests.append(entry)
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    ).encode()
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        data=index,
        method="PUT",
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Docker-Content-Digest"]


def send_answer(handler: http.server.BaseHTTPRequestHandler, status: int, headers: dict, body: bytes) -> None:
    """Write one HTTP answer from a handler (no body for HEAD, as a server must)."""
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class BehaviourProxy:
    """A stdlib HTTP proxy in front of a real registry that behaves like registries met in the field.

    ``head_405``: manifests refuse HEAD (Nexus, some proxies). ``content_type``: manifests served with this
    generic type instead (``application/json``, ``application/octet-stream``); ``drop_digest``: without the
    Docker-Content-Digest header (Artifactory). ``redirect_to``: authenticated manifest requests are answered
    with a 307 to that other registry (a mirror with its own token service). ``referrers``: ``"405"`` answers
    the OCI referrers API with 405 (as some registries do); ``"api"`` gives the registry one (distribution 2.8
    has none): the referrers of a digest are the ``sha256-<hex>`` tag's index, and that tag itself is hidden,
    so only the API finds them. ``seen`` records each request's method, path and Authorization header.
    """

    def __init__(
        self, upstream: str, head_405=False, content_type=None, drop_digest=False, redirect_to=None, referrers=None
    ):
        self.seen: list = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                auth = self.headers.get("Authorization")
                proxy.seen.append((self.command, self.path, auth))
                manifest = "/manifests/" in self.path
                if manifest and head_405 and self.command == "HEAD":
                    send_answer(self, 405, {"Allow": "GET"}, b"")
                    return
                if manifest and redirect_to and auth:
                    send_answer(self, 307, {"Location": f"http://{redirect_to}{self.path}"}, b"")
                    return
                path = self.path
                if "/referrers/" in path and referrers == "405":
                    send_answer(self, 405, {"Allow": "GET"}, b"")
                    return
                if "/referrers/" in path and referrers == "api":
                    name, _sep, digest = path.partition("/referrers/")
                    path = f"{name}/manifests/{digest.replace(':', '-', 1)}"
                elif referrers == "api" and "/manifests/sha256-" in path:
                    send_answer(
                        self, 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                connection = http.client.HTTPConnection(upstream, timeout=30)
                connection.request(self.command, path, headers=headers)
                upstream_answer = connection.getresponse()
                body = upstream_answer.read()
                answer_headers = {
                    k: v for k, v in upstream_answer.getheaders() if k.lower() not in ("content-length", "connection")
                }
                if manifest and upstream_answer.status == 200:
                    if content_type:
                        answer_headers["Content-Type"] = content_type
                    if drop_digest:
                        answer_headers.pop("Docker-Content-Digest", None)
                connection.close()
                send_answer(self, upstream_answer.status, answer_headers, body)

            do_GET = do_HEAD = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self):
        self._server.shutdown()
