# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small OCI distribution client: resolve a tag to the digest the registry serves, without pulling.

HEAD the manifest with the Accept types a pull sends; read Docker-Content-Digest.
GET instead (and hash the exact bytes) when a registry refuses HEAD (405), omits
the digest or answers with a generic content type: the body decides what it is.
Auth: anonymous and credentialed bearer tokens from the WWW-Authenticate
challenge, basic auth, credentials from options or a docker config (auths,
credsStore, credHelpers). Redirects are followed hop by hop, each host
authenticated with its own challenge; tokens are kept per host, realm, service
and scope. Platforms compare as Docker normalises them (arm64 = arm64/v8).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import urljoin, urlsplit

try:
    import requests
    from requests.adapters import HTTPAdapter

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - the controller's requirements carry requests
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = exc

from ansible_collections.pinned.release.plugins.module_utils._reference import (
    DOCKER_HUB,
    ImageReference,
    ImageReferenceError,
    parse_digest,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join(MANIFEST_TYPES)
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# HEAD answers that settle a resolve; any other failure (405, 400, 5xx after retries) is asked again with GET.
HEAD_ANSWERS_TRUSTED = frozenset({401, 403, 404, 429})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_RETRY_WAIT = 60.0
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class RegistryError(Exception):
    """Base of every failure talking to a registry; messages are one line and say what to do."""


class ManifestNotFound(RegistryError):
    pass


class RepositoryNotFound(RegistryError):
    pass


class Unauthorized(RegistryError):
    pass


class Forbidden(RegistryError):
    pass


class RegistryTLSError(RegistryError):
    pass


class RegistryUnreachable(RegistryError):
    pass


class RegistryProtocolError(RegistryError):
    pass


class InvalidPlatform(RegistryError):
    """A platform that is not os/architecture[/variant]."""


class RateLimited(RegistryError):
    pass


class TooLarge(RegistryError):
    """A document larger than the caller's bound: refused before (or while) it is downloaded."""


@dataclass(frozen=True)
class Fetched:
    """A bounded GET: its status, the content type and the body (None for 404 and 405)."""

    status: int
    media_type: str
    body: Optional[bytes]


@dataclass
class Resolution:
    """What a registry serves for one reference."""

    digest: str
    image_ref: str
    registry: str
    repository: str
    tag: Optional[str]
    media_type: str
    platform_digest: Optional[str] = None
    platforms: list = field(default_factory=list)
    ratelimit_remaining: Optional[str] = None

    def as_dict(self) -> dict:
        return {
            "digest": self.digest,
            "image_ref": self.image_ref,
            "registry": self.registry,
            "repository": self.repository,
            "tag": self.tag,
            "media_type": self.media_type,
            "platform_digest": self.platform_digest,
            "platforms": self.platforms,
            "ratelimit_remaining": self.ratelimit_remaining,
        }


# ------------------------------------------------------------------ pure helpers


def parse_challenge(header: str) -> tuple[str, dict]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {realm, service, ...})."""
    scheme, _sep, params = (header or "").strip().partition(" ")
    values = {}
    for match in re.finditer(r'([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', params):
        values[match.group(1).lower()] = match.group(2) if match.group(2) is not None else match.group(3)
    return scheme.lower(), values


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, retry_after: Optional[float], base: float = 0.5) -> float:
    """Exponential backoff, overridden by the server's Retry-After, capped."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_WAIT)
    return min(base * (2**attempt), MAX_RETRY_WAIT)


def sha256_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def platform_string(entry: dict) -> str:
    platform = entry.get("platform") or {}
    text = f"{platform.get('os', 'unknown')}/{platform.get('architecture', 'unknown')}"
    if platform.get("variant"):
        text += f"/{platform['variant']}"
    return text


# Docker's (containerd's) platform normalisation: architecture aliases and the variants each architecture
# has by default, so linux/arm64/v8 and linux/arm64 name one platform.
_ARCH_ALIASES = {"aarch64": ("arm64", ""), "x86_64": ("amd64", ""), "x86-64": ("amd64", ""), "i386": ("386", ""),
                 "armhf": ("arm", "v7"), "armel": ("arm", "v6")}  # fmt: skip
_DEFAULT_VARIANT = {"arm64": "v8", "amd64": "v1", "arm": "v7"}


def normalize_platform(text: str) -> str:
    """``os/arch[/variant]`` as Docker compares it: lowercase, aliases resolved, default variants dropped."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidPlatform(f"platform {text!r} is not os/architecture[/variant], for example linux/amd64")
    os_name, arch = parts[0], parts[1]
    os_name = "darwin" if os_name == "macos" else os_name
    arch, variant = _ARCH_ALIASES.get(arch, (arch, ""))
    variant = parts[2] if len(parts) == 3 else variant
    if arch == "arm64" and variant == "8":
        variant = "v8"
    if variant == _DEFAULT_VARIANT.get(arch) and arch != "arm":
        variant = ""
    if arch == "arm" and not variant:
        variant = "v7"
    return f"{os_name}/{arch}/{variant}" if variant else f"{os_name}/{arch}"


def select_platform(platforms: list, wanted: str) -> Optional[str]:
    """Digest of the index entry Docker would pull for ``os/arch[/variant]`` (``linux/arm64`` = ``linux/arm64/v8``).

    An exact match wins; a platform asked for without a variant then takes the first entry of that architecture.
    """
    target = normalize_platform(wanted)
    listed = []
    for entry in platforms:
        try:
            listed.append((normalize_platform(entry["platform"]), entry["digest"]))
        except InvalidPlatform:
            continue  # an index entry without a usable platform is never what was asked for
    for platform, digest in listed:
        if platform == target:
            return digest
    if target.count("/") == 1:
        for platform, digest in listed:
            if platform.startswith(target + "/"):
                return digest
    return None


def config_keys_for(registry: str) -> list:
    """The keys a docker config may use for a registry's credentials."""
    if registry == DOCKER_HUB:
        return [
            DOCKER_HUB_CONFIG_KEY,
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
            "https://index.docker.io",
        ]
    return [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v2/", f"https://{registry}/v1/"]


@dataclass(frozen=True)
class Credentials:
    username: Optional[str] = None
    password: Optional[str] = None
    identity_token: Optional[str] = None

    @property
    def usable(self) -> bool:
        return bool(self.identity_token or (self.username and self.password is not None))


def credentials_from_docker_config(
    config: dict, registry: str, helper_runner: Optional[Callable[[str, str], dict]] = None
) -> Credentials:
    """Credentials for ``registry`` from a parsed ~/.docker/config.json.

    Order as docker does it: a credHelpers entry for the registry, then the
    credsStore, then the inline ``auths`` entry.
    """
    keys = config_keys_for(registry)
    run_helper = helper_runner or _run_credential_helper
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if key in helpers:
            return _helper_credentials(run_helper(helpers[key], key))
    auths = config.get("auths") or {}
    if config.get("credsStore"):
        # docker asks the store with the canonical server key, once.
        found = run_helper(config["credsStore"], keys[0])
        if found:
            return _helper_credentials(found)
    for key in keys:
        entry = auths.get(key)
        if not entry:
            continue
        if entry.get("identitytoken"):
            return Credentials(identity_token=entry["identitytoken"])
        if entry.get("auth"):
            try:
                user, _sep, password = base64.b64decode(entry["auth"], validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise Unauthorized(
                    f"docker config entry {key!r} has an auth value that is not base64 user:password"
                ) from exc
            return Credentials(username=user, password=password)
        if entry.get("username"):
            return Credentials(username=entry["username"], password=entry.get("password"))
    return Credentials()


def _helper_credentials(found: dict) -> Credentials:
    if not found:
        return Credentials()
    if found.get("Username") == "<token>":
        return Credentials(identity_token=found.get("Secret"))
    return Credentials(username=found.get("Username"), password=found.get("Secret"))


def _run_credential_helper(helper: str, server: str) -> dict:
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run([program, "get"], input=server, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as exc:
        raise Unauthorized(
            f"docker config names credential helper {helper!r} but {program} is not on PATH: install it or drop it from the config"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise Unauthorized(f"credential helper {program} did not answer within 30 s for {server}") from exc
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return {}
        raise Unauthorized(f"credential helper {program} failed for {server}: {(proc.stderr or proc.stdout).strip()}")
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise Unauthorized(f"credential helper {program} returned something that is not JSON for {server}") from exc


def load_docker_config(path: Optional[str]) -> dict:
    if not path:
        return {}
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise Unauthorized(f"cannot read docker config {path}: {exc}; fix it or set docker_config_path") from exc


def ratelimit_remaining(headers: Any) -> Optional[str]:
    value = headers.get("ratelimit-remaining")
    return value.split(";", 1)[0].strip() if value else None


# ------------------------------------------------------------------ client


class RegistryClient:
    """Talks to registries for one module run: one HTTP session, tokens reused per repository scope."""

    def __init__(
        self,
        username: Optional[str] = None,
        password: Optional[str] = None,
        docker_config_path: Optional[str] = None,
        ca_path: Optional[str] = None,
        validate_certs: bool = True,
        timeout: float = 30.0,
        retries: int = 3,
        insecure_registries: Optional[list] = None,
        backoff_base: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 16,
    ):
        if not HAS_REQUESTS:
            raise RegistryError(f"the Python library requests is needed on the controller: {REQUESTS_IMPORT_ERROR}")
        if ca_path and not os.path.exists(ca_path):
            raise RegistryTLSError(
                f"ca_path {ca_path} does not exist: point it at the PEM bundle of your registry's CA"
            )
        self._explicit = Credentials(username, password) if username else None
        self._docker_config = load_docker_config(docker_config_path)
        self._verify: Any = ca_path if (validate_certs and ca_path) else validate_certs
        self._timeout = timeout
        self._retries = max(0, int(retries))
        self._insecure = set(insecure_registries or [])
        self._backoff_base = backoff_base
        self._sleep = sleep
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._lock = threading.Lock()
        self._tokens: dict = {}
        self._challenges: dict = {}
        self._credentials: dict = {}
        # Like docker: HTTPS first; plain HTTP only where allowed and the server does not speak TLS.
        self._schemes: dict = {}

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- public

    def resolve(self, ref: ImageReference, platform: Optional[str] = None) -> Resolution:
        """The digest the registry serves for ``ref`` (a tag, or a digest checked to exist)."""
        if platform:
            normalize_platform(platform)
        response = self._request("HEAD", ref, f"manifests/{ref.reference}", {"Accept": ACCEPT})
        media_type = _media_type(response)
        digest = response.headers.get("Docker-Content-Digest")
        body = None
        if response.status_code in HEAD_ANSWERS_TRUSTED:
            if response.status_code == 404:
                if ref.digest:
                    self._raise_if_blob(ref)
                self._raise_not_found(ref)
            self._raise_for_status(response, ref)
        if response.status_code >= 300 or not digest or media_type not in MANIFEST_TYPES or media_type in INDEX_TYPES:
            # Like docker and crane: a HEAD refused (405 from Nexus and some proxies) or answered with a generic
            # content type or no digest is asked again with GET, whose body tells what it is.
            body, media_type, digest = self._get_manifest(ref, digest if response.status_code < 300 else None)
        if media_type not in MANIFEST_TYPES:
            raise RegistryProtocolError(
                f"{ref.api_host} answered for {ref} with {media_type or 'no content type'}, not an image manifest: "
                "is this really a registry endpoint?"
            )
        digest = parse_digest(digest)
        if ref.digest and digest != ref.digest:
            raise RegistryProtocolError(f"{ref.api_host} served digest {digest} when asked for {ref.digest}")

        resolution = Resolution(
            digest=digest,
            image_ref=f"{ref.name}@{digest}",
            registry=ref.registry,
            repository=ref.repository,
            tag=ref.tag,
            media_type=media_type,
            ratelimit_remaining=ratelimit_remaining(response.headers),
        )
        if media_type in INDEX_TYPES and body is not None:
            resolution.platforms = _platforms(body, ref)
            if platform:
                resolution.platform_digest = select_platform(resolution.platforms, platform)
                if resolution.platform_digest is None:
                    available = ", ".join(p["platform"] for p in resolution.platforms) or "none"
                    raise ManifestNotFound(f"{ref} has no {platform} image (index lists: {available})")
        elif platform:
            # A single-platform manifest serves whatever platform it was built for.
            resolution.platform_digest = digest
        return resolution

    def resolve_many(self, refs: list, platform: Optional[str] = None, workers: int = 8) -> list:
        """Resolve concurrently, results in input order; the first failure is raised after all finish."""
        if len(refs) <= 1:
            return [self.resolve(ref, platform) for ref in refs]
        with ThreadPoolExecutor(max_workers=min(workers, len(refs))) as pool:
            futures = [pool.submit(self.resolve, ref, platform) for ref in refs]
            results, first_error = [], None
            for future in futures:
                try:
                    results.append(future.result())
                except RegistryError as exc:
                    first_error = first_error or exc
                    results.append(None)
        if first_error:
            raise first_error
        return results

    def fetch(self, ref: ImageReference, path: str, accept: str, max_bytes: int, what: str) -> Fetched:
        """GET ``/v2/<repository>/<path>`` with a size bound; 404 and 405 come back as answers, other failures raise.

        A body announced (Content-Length) or found larger than ``max_bytes`` is refused as ``what`` before the
        rest of it is read.
        """
        response = self._request("GET", ref, path, {"Accept": accept}, stream=True)
        try:
            if response.status_code in (404, 405):
                return Fetched(response.status_code, _media_type(response), None)
            self._raise_for_status(response, ref)
            announced = response.headers.get("Content-Length", "")
            if announced.isdigit() and int(announced) > max_bytes:
                raise TooLarge(f"{ref.api_host} announced {announced} bytes for {what}, over the bound of {max_bytes}")
            body = b""
            for chunk in response.iter_content(65536):
                body += chunk
                if len(body) > max_bytes:
                    raise TooLarge(f"{ref.api_host} sent more than {max_bytes} bytes for {what}, the bound")
            return Fetched(response.status_code, _media_type(response), body)
        except requests.exceptions.RequestException as exc:
            raise RegistryUnreachable(f"reading {what} from {ref.api_host} failed: {_short(exc)}") from exc
        finally:
            response.close()

    # -------------------------------------------------------------- internals

    def _plain_http_allowed(self, ref: ImageReference) -> bool:
        return ref.is_loopback or ref.registry in self._insecure or ref.host in self._insecure

    def _url(self, ref: ImageReference, path: str) -> str:
        with self._lock:
            scheme = self._schemes.get(ref.api_host, "https")
        return f"{scheme}://{ref.api_host}/v2/{ref.repository}/{path}"

    def _request(self, method: str, ref: ImageReference, path: str, headers: dict, stream: bool = False):
        """One registry request: retries, plain-HTTP fallback, and redirects followed hop by hop.

        Each hop authenticates for its own host with that host's challenge and credentials: a registry that
        redirects to a mirror with its own token service never gets the mirror's token, nor the mirror ours.
        """
        url = self._url(ref, path)
        scope = f"repository:{ref.repository}:pull"
        challenged: set = set()
        attempt = hops = 0
        while True:
            host = urlsplit(url).netloc
            request_headers = dict(headers)
            auth = self._auth_header(ref, host, scope)
            if auth:
                request_headers["Authorization"] = auth
            try:
                response = self._send(method, url, request_headers, ref, stream=stream)
            except RegistryTLSError as exc:
                origin = host == ref.api_host and url.startswith("https:")
                if not (origin and self._plain_http_allowed(ref) and _not_tls(exc.__cause__)):
                    raise
                with self._lock:
                    self._schemes[ref.api_host] = "http"
                url = self._url(ref, path)
                continue
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                hops += 1
                if hops > MAX_REDIRECTS:
                    raise RegistryProtocolError(
                        f"registry {ref.api_host} redirected {ref} more than {MAX_REDIRECTS} times"
                    )
                url = urljoin(url, response.headers["Location"])
                response.close()  # a streamed answer holds its connection until closed
                continue
            if response.status_code == 401 and host not in challenged:
                challenged.add(host)
                response.close()
                self._authenticate(ref, host, scope, response.headers.get("WWW-Authenticate", ""))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self._retries:
                wait = backoff_delay(
                    attempt, parse_retry_after(response.headers.get("Retry-After")), self._backoff_base
                )
                attempt += 1
                response.close()
                self._sleep(wait)
                continue
            return response

    def _send(self, method: str, url: str, headers: dict, ref: ImageReference, **kwargs):
        try:
            return self._send_once(method, url, headers, ref, **kwargs)
        except RegistryError as exc:
            # A redirect's presigned URL carries credentials in its query (and a URL may carry a password): an
            # error names the place, never them.
            parts = urlsplit(url)
            secrets = [part for part in (parts.query, parts.password, parts.username) if part]
            if not secrets:
                raise
            text = str(exc)
            for secret in secrets:
                text = text.replace(secret, "***")
            raise type(exc)(text) from exc.__cause__

    def _send_once(self, method: str, url: str, headers: dict, ref: ImageReference, **kwargs):
        try:
            return self._session.request(
                method,
                url,
                headers=headers,
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,
                **kwargs,
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryTLSError(
                f"TLS verification failed for {url.split('/v2/')[0]}: {_short(exc)}; set ca_path to the CA bundle "
                "that signed the registry's certificate (validate_certs=false only for a throwaway lab)"
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise RegistryUnreachable(
                f"registry {ref.api_host} did not answer within {self._timeout:g} s ({url}); check the network or raise timeout"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise RegistryUnreachable(f"cannot reach registry {ref.api_host} ({url}): {_short(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            raise RegistryUnreachable(f"request to {url} failed: {_short(exc)}") from exc

    def _credentials_for(self, ref: ImageReference, host: Optional[str] = None) -> Credentials:
        """The image's registry gets the explicit credentials; any other host (a redirect's) only its own."""
        host = host or ref.api_host
        if self._explicit and host == ref.api_host:
            return self._explicit
        server = ref.registry if host == ref.api_host else host
        with self._lock:
            if server not in self._credentials:
                self._credentials[server] = credentials_from_docker_config(self._docker_config, server)
            return self._credentials[server]

    def _auth_header(self, ref: ImageReference, host: str, scope: str) -> Optional[str]:
        with self._lock:
            challenge = self._challenges.get(host)
        if not challenge:
            return None
        key = _token_key(host, challenge, scope)
        with self._lock:
            token = self._tokens.get(key)
        if token:
            return token
        # The host told us how it authenticates: skip the 401 round trip for new scopes.
        self._authenticate(ref, host, scope, challenge)
        with self._lock:
            return self._tokens.get(key)

    def _authenticate(self, ref: ImageReference, host: str, scope: str, header: str) -> None:
        scheme, params = parse_challenge(header)
        creds = self._credentials_for(ref, host)
        if scheme == "basic":
            if not creds.usable or not creds.username:
                raise Unauthorized(
                    f"registry {host} requires a login for {ref.name}: set username/password "
                    "or log in with docker login (docker_config_path)"
                )
            value = "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        elif scheme == "bearer":
            value = "Bearer " + self._fetch_token(ref, scope, params, creds)
        else:
            raise RegistryProtocolError(
                f"registry {host} asked for unsupported authentication {header or '(no WWW-Authenticate header)'}"
            )
        with self._lock:
            self._tokens[_token_key(host, header, scope)] = value
            self._challenges[host] = header

    def _fetch_token(self, ref: ImageReference, scope: str, params: dict, creds: Credentials) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryProtocolError(f"registry {ref.api_host} sent a Bearer challenge without a realm")
        query = {"scope": scope}
        if params.get("service"):
            query["service"] = params["service"]
        try:
            if creds.identity_token:
                response = self._session.post(
                    realm,
                    data={
                        **query,
                        "grant_type": "refresh_token",
                        "refresh_token": creds.identity_token,
                        "client_id": "pinned.release",
                    },
                    timeout=self._timeout,
                    verify=self._verify,
                )
            else:
                auth = (creds.username, creds.password) if creds.usable else None
                response = self._session.get(realm, params=query, auth=auth, timeout=self._timeout, verify=self._verify)
        except requests.exceptions.SSLError as exc:
            raise RegistryTLSError(
                f"TLS verification failed for token service {realm}: {_short(exc)}; set ca_path"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise RegistryUnreachable(f"cannot reach token service {realm} for {ref.api_host}: {_short(exc)}") from exc
        if response.status_code == 401:
            who = f"user {creds.username!r}" if creds.username else "anonymous access"
            raise Unauthorized(
                f"token service {realm} refused {who} for {ref.name}: check username/password or docker login"
            )
        if response.status_code == 403:
            raise Forbidden(
                f"token service {realm} denied pull access to {ref.name} for {creds.username or 'anonymous'}"
            )
        if response.status_code != 200:
            raise RegistryProtocolError(f"token service {realm} answered HTTP {response.status_code} for {ref.name}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise RegistryProtocolError(f"token service {realm} answered with something that is not JSON") from exc
        token = payload.get("token") or payload.get("access_token")
        if not token:
            raise RegistryProtocolError(f"token service {realm} answered without a token")
        return token

    def _get_manifest(self, ref: ImageReference, header_digest: Optional[str]) -> tuple:
        target = header_digest or ref.reference
        response = self._request("GET", ref, f"manifests/{target}", {"Accept": ACCEPT})
        if ref.digest and response.status_code >= 400 and response.status_code not in (401, 403):
            self._raise_if_blob(ref)
        if response.status_code == 404:
            self._raise_not_found(ref)
        self._raise_for_status(response, ref)
        body = response.content
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryProtocolError(f"{ref.api_host} sent {len(body)} bytes for the manifest of {ref}: too large")
        computed = sha256_digest(body)
        served = response.headers.get("Docker-Content-Digest")
        for claimed in filter(None, (served, header_digest)):
            if claimed.startswith("sha256:") and claimed != computed:
                raise RegistryProtocolError(
                    f"{ref.api_host} sent a manifest for {ref} whose bytes hash to {computed}, not {claimed}: refusing it"
                )
        media_type = _media_type(response)
        if media_type not in MANIFEST_TYPES:
            # A generic type (application/json, application/octet-stream from Artifactory): the body decides.
            media_type = manifest_type_of_body(body) or media_type
        return body, media_type, served or computed

    def _raise_if_blob(self, ref: ImageReference) -> None:
        """An image ID is the digest of the image's config blob; registry 2.8 answers it with HTTP 500."""
        probe = self._request("HEAD", ref, f"blobs/{ref.digest}", {})
        if probe.status_code == 200:
            raise ManifestNotFound(
                f"{ref.digest} is a blob in {ref.name} (the image config, i.e. a local image ID), not a manifest: "
                "use the repository digest (pinned.release.resolve_digest), not docker images' IMAGE ID"
            )

    def _raise_not_found(self, ref: ImageReference) -> None:
        probe = self._request("GET", ref, "tags/list?n=1", {"Accept": "application/json"})
        codes = _error_codes(probe)
        if probe.status_code == 404 and ("NAME_UNKNOWN" in codes or not codes):
            raise RepositoryNotFound(
                f"repository {ref.repository} not found in registry {ref.registry}: check the name"
            )
        what = f"digest {ref.digest}" if ref.digest else f"tag {ref.tag!r}"
        raise ManifestNotFound(f"{what} not found in repository {ref.name}: push it or check the spelling")

    def _raise_for_status(self, response: Any, ref: ImageReference) -> None:
        status = response.status_code
        if status < 300:
            return
        if status == 401:
            creds = self._credentials_for(ref)
            if creds.usable:
                raise Unauthorized(
                    f"registry {ref.api_host} rejected the credentials for {ref.name}: check username/password"
                )
            raise Unauthorized(
                f"registry {ref.api_host} requires credentials for {ref.name} (or the repository does not exist): "
                "set username/password or docker login"
            )
        if status == 403:
            raise Forbidden(f"registry {ref.api_host} denied access to {ref.name}: the account lacks pull permission")
        if status == 429:
            raise RateLimited(
                f"registry {ref.api_host} rate-limited the request for {ref} after {self._retries} retries"
                + (
                    f" (ratelimit-remaining {ratelimit_remaining(response.headers)})"
                    if ratelimit_remaining(response.headers)
                    else ""
                )
            )
        raise RegistryProtocolError(f"registry {ref.api_host} answered HTTP {status} for {ref}")


def _token_key(host: str, challenge: str, scope: str) -> tuple:
    """Tokens belong to the host that asked for them and the realm and service that issued them."""
    _scheme, params = parse_challenge(challenge)
    return (host, params.get("realm"), params.get("service"), scope)


def _not_tls(exc: Optional[BaseException]) -> bool:
    """The server answered a TLS handshake with something else (a plain HTTP registry)."""
    text = str(exc)
    return any(
        sign in text
        for sign in ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure", "unknown protocol")
    )


def _media_type(response: Any) -> str:
    return (response.headers.get("Content-Type") or "").split(";", 1)[0].strip()


def manifest_type_of_body(body: bytes) -> Optional[str]:
    """The manifest type a body declares, or shows by its shape (schema 2 without mediaType); None if not one."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("schemaVersion") != 2:
        return None
    declared = document.get("mediaType")
    if declared:
        return declared
    if isinstance(document.get("manifests"), list):
        return OCI_INDEX
    if isinstance(document.get("config"), dict) and isinstance(document.get("layers"), list):
        return OCI_MANIFEST
    return None


def _error_codes(response: Any) -> list:
    try:
        return [e.get("code") for e in response.json().get("errors", [])]
    except (ValueError, AttributeError):
        return []


def _platforms(body: bytes, ref: ImageReference) -> list:
    try:
        manifests = json.loads(body).get("manifests") or []
    except (ValueError, AttributeError) as exc:
        raise RegistryProtocolError(f"the index for {ref} is not valid JSON") from exc
    result = []
    for entry in manifests:
        # Attestation manifests (buildkit) are not runnable platforms.
        if (entry.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        result.append({"platform": platform_string(entry), "digest": entry.get("digest")})
    return result


_ROOT_CAUSES = (
    "Connection refused",
    "Name or service not known",
    "No route to host",
    "Temporary failure in name resolution",
    "certificate verify failed",
    "Connection reset by peer",
    "wrong version number",
)


def _short(exc: Exception) -> str:
    """The root cause of a requests/urllib3 error, not its nested repr."""
    text = str(exc)
    for cause in _ROOT_CAUSES:
        if cause in text:
            detail = re.search(re.escape(cause) + r"[^'\")]*", text)
            return detail.group(0).rstrip(" ,") if detail else cause
    return text if len(text) <= 200 else text[:197] + "..."


# Options shared by every module that talks to a registry (doc fragment: pinned.release.registry).
REGISTRY_ARGUMENT_SPEC = {
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "docker_config_path": {"type": "path", "default": "~/.docker/config.json"},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 30.0},
    "retries": {"type": "int", "default": 3},
    "insecure_registries": {"type": "list", "elements": "str", "default": []},
}


def client_from_params(params: dict) -> RegistryClient:
    return RegistryClient(
        username=params.get("username"),
        password=params.get("password"),
        docker_config_path=params.get("docker_config_path"),
        ca_path=params.get("ca_path"),
        validate_certs=params.get("validate_certs", True),
        timeout=params.get("timeout", 30.0),
        retries=params.get("retries", 3),
        insecure_registries=params.get("insecure_registries"),
    )


__all__ = [
    "REGISTRY_ARGUMENT_SPEC",
    "ImageReferenceError",
    "RegistryClient",
    "RegistryError",
    "Resolution",
    "client_from_params",
]
