# SPDX-License-Identifier: GPL-3.0-or-later
"""resolve_digest against real registries: plain, TLS, basic auth, token auth, a multi-arch index."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
from typing import ClassVar

import pytest

from ansible_collections.pinned.release.plugins.module_utils._reference import parse_reference
from ansible_collections.pinned.release.plugins.module_utils._registry import (
    Forbidden,
    ManifestNotFound,
    RegistryClient,
    RegistryProtocolError,
    RegistryUnreachable,
    Unauthorized,
)
from tests.support.lab import APP_REPO, REGISTRY, RELEASE_TAG, ansible_module, registry_digest
from tests.support.registries import (
    BehaviourProxy,
    TokenIssuer,
    copy_image,
    free_port,
    push_index,
    send_answer,
    start_registry,
)

MODULE = "pinned.release.resolve_digest"


def skopeo_digest(ref: str, *args: str) -> str:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", *args, f"docker://{ref}"], capture_output=True, check=True
    ).stdout
    proc = subprocess.run(["skopeo", "manifest-digest", "/dev/stdin"], input=raw, capture_output=True, check=True)
    return proc.stdout.decode().strip()


def docker_pull_repo_digest(ref: str) -> str:
    subprocess.run(["docker", "pull", "-q", ref], check=True, capture_output=True)
    repo = ref.rsplit(":", 1)[0]
    digests = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .RepoDigests}}", ref], capture_output=True, check=True
        ).stdout
    )
    return next(d.split("@", 1)[1] for d in digests if d.startswith(repo + "@"))


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory, lab):
    registry = start_registry(tmp_path_factory.mktemp("tls"), "tls", tls=True, htpasswd=True)
    try:
        copy_image(
            "v1",
            f"{registry.address}/private/app:v1",
            ["--dest-cert-dir", str(registry.ca_path.parent), "--dest-creds", "alice:wonderland"],
        )
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory, lab):
    directory = tmp_path_factory.mktemp("token")
    issuer = TokenIssuer(directory, service="pinned-test-registry", issuer="pinned-test-issuer")
    # Push through a twin registry on the same storage without auth, then serve it with token auth.
    plain = start_registry(directory, "token-seed")
    try:
        _seed_token_registry(plain)
    finally:
        plain.stop()
    registry = start_registry(directory, "token", token=issuer)
    registry.extra["issuer"] = issuer
    try:
        yield registry
    finally:
        registry.stop()
        issuer.stop()


def _seed_token_registry(plain):
    for tag in ("v1", "v2"):
        copy_image(tag, f"{plain.address}/public/app:{tag}", ["--dest-tls-verify=false"])
        copy_image(tag, f"{plain.address}/private/app:{tag}", ["--dest-tls-verify=false"])
    for n in range(100):
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
             f"docker://{plain.address}/public/app:v1", f"docker://{plain.address}/public/app:t{n}"],
            check=True, capture_output=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def multiarch(tmp_path_factory, lab):
    registry = start_registry(tmp_path_factory.mktemp("multi"), "multi")
    copy_image("v1", f"{registry.address}/multi/app:amd64", ["--dest-tls-verify=false"])
    copy_image("v2", f"{registry.address}/multi/app:arm64", ["--dest-tls-verify=false"])
    index_digest = push_index(
        registry.address, "multi/app", "release", {"linux/amd64": "amd64", "linux/arm64/v8": "arm64"}
    )
    # The same images listed the other way: arm64 without its (default) variant.
    push_index(registry.address, "multi/app", "novariant", {"linux/amd64": "amd64", "linux/arm64": "arm64"})
    yield registry, index_digest
    registry.stop()


class _Answering(http.server.BaseHTTPRequestHandler):
    """A real HTTP server whose answers a test scripts: status, headers, body per request."""

    script: ClassVar[list] = []
    seen: ClassVar[list] = []

    def log_message(self, *args):
        pass

    def _answer(self):
        type(self).seen.append((self.command, self.path))
        send_answer(self, *(type(self).script.pop(0) if type(self).script else (404, {}, b"")))

    do_GET = do_HEAD = _answer


@pytest.fixture
def scripted_server():
    handler = type("Handler", (_Answering,), {"script": [], "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], handler
    server.shutdown()


# ------------------------------------------------------------------ plain lab registry


def test_module_matches_skopeo_and_docker_pull(lab):
    result = ansible_module(MODULE, {"image": f"{APP_REPO}:{RELEASE_TAG}"})
    assert result.get("failed") is not True, result
    expected = skopeo_digest(f"{APP_REPO}:{RELEASE_TAG}", "--tls-verify=false")
    assert result["digest"] == expected
    assert result["image_ref"] == f"{APP_REPO}@{expected}"
    assert result["changed"] is False
    assert (result["registry"], result["repository"], result["tag"]) == (REGISTRY, "pinned/openwebui", RELEASE_TAG)
    assert result["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert docker_pull_repo_digest(f"{APP_REPO}:{RELEASE_TAG}") == expected


def test_check_mode_runs_normally(lab):
    result = ansible_module(MODULE, {"image": f"{APP_REPO}:v2"}, check=True)
    assert result["digest"] == registry_digest("v2")


def test_digest_reference_is_checked_and_returned(lab):
    digest = registry_digest("v1")
    result = ansible_module(MODULE, {"image": f"{APP_REPO}@{digest}"})
    assert result["digest"] == digest
    assert result["tag"] is None


def test_batch_keeps_order(lab):
    tags = ["v2", "v1", "broken", "slow", "v1"]
    result = ansible_module(MODULE, {"images": [f"{APP_REPO}:{t}" for t in tags]})
    assert [r["digest"] for r in result["images"]] == [registry_digest(t) for t in tags]
    assert [r["tag"] for r in result["images"]] == tags


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"image": f"{APP_REPO}:nope"}, f"tag 'nope' not found in repository {APP_REPO}"),
        ({"image": f"{REGISTRY}/pinned/nothere:v1"}, f"repository pinned/nothere not found in registry {REGISTRY}"),
        ({"image": f"{APP_REPO}@sha256:{'0' * 64}"}, f"digest sha256:{'0' * 64} not found in repository {APP_REPO}"),
        ({"image": f"{REGISTRY}/Pinned/openwebui:v1"}, "must be lowercase"),
        ({"image": f"{APP_REPO}@sha256:abc"}, "needs exactly 64 lowercase hex digits"),
        ({"image": f"{APP_REPO}@{'a' * 64}"}, "not an image ID"),
        ({"image": f"{APP_REPO}:v1", "images": [f"{APP_REPO}:v1"]}, "mutually exclusive"),
        ({"platform": "linux/amd64"}, "one of the following is required"),
    ],
)
def test_module_errors_are_one_clear_line(lab, args, message):
    result = ansible_module(MODULE, args)
    assert result["failed"] is True
    assert message in result["msg"]
    assert "\n" not in result["msg"]
    assert "Traceback" not in result["_stdout"]


def test_unreachable_registry():
    port = free_port()
    with pytest.raises(RegistryUnreachable, match=rf"cannot reach registry 127.0.0.1:{port} .*Connection refused"):
        RegistryClient().resolve(parse_reference(f"127.0.0.1:{port}/a/b:v1"))


def test_registry_that_never_answers_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        with pytest.raises(RegistryUnreachable, match=r"did not answer within 0.5 s"):
            RegistryClient(timeout=0.5, retries=0).resolve(parse_reference(f"127.0.0.1:{port}/a/b:v1"))


def test_non_manifest_content_is_refused(scripted_server):
    port, handler = scripted_server
    handler.script = [(200, {"Content-Type": "text/html"}, b"<html>login</html>")] * 2
    with pytest.raises(RegistryProtocolError, match="text/html, not an image manifest"):
        RegistryClient().resolve(parse_reference(f"127.0.0.1:{port}/a/b:v1"))


def test_retries_429_and_503_honouring_retry_after(scripted_server):
    port, handler = scripted_server
    digest = registry_digest("v1")
    ok = {
        "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        "Docker-Content-Digest": digest,
        "ratelimit-remaining": "99;w=21600",
    }
    handler.script = [(429, {"Retry-After": "2"}, b""), (503, {}, b""), (200, ok, b"")]
    waits = []
    result = RegistryClient(retries=3, backoff_base=0.1, sleep=waits.append).resolve(
        parse_reference(f"127.0.0.1:{port}/a/b:v1")
    )
    assert result.digest == digest
    assert result.ratelimit_remaining == "99"
    assert waits == [2.0, 0.2]


def test_retries_are_bounded(scripted_server):
    port, handler = scripted_server
    handler.script = [(429, {"ratelimit-remaining": "0;w=60"}, b"")] * 5
    with pytest.raises(Exception, match=r"rate-limited .* after 2 retries \(ratelimit-remaining 0\)"):
        RegistryClient(retries=2, sleep=lambda _: None).resolve(parse_reference(f"127.0.0.1:{port}/a/b:v1"))
    assert len(handler.seen) == 3


def test_digest_header_missing_is_computed_from_bytes(scripted_server):
    port, handler = scripted_server
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
    manifest = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    handler.script = [(200, manifest, b""), (200, manifest, body)]
    import hashlib

    result = RegistryClient().resolve(parse_reference(f"127.0.0.1:{port}/a/b:v1"))
    assert result.digest == "sha256:" + hashlib.sha256(body).hexdigest()


def test_served_digest_that_disagrees_with_bytes_is_refused(scripted_server):
    port, handler = scripted_server
    headers = {"Content-Type": "application/vnd.oci.image.index.v1+json", "Docker-Content-Digest": "sha256:" + "1" * 64}
    handler.script = [(200, headers, b""), (200, headers, b'{"manifests": []}')]
    with pytest.raises(RegistryProtocolError, match="hash to sha256:"):
        RegistryClient().resolve(parse_reference(f"127.0.0.1:{port}/a/b:v1"))


# ------------------------------------------------------------------ TLS + basic auth


def test_tls_with_ca_path_and_basic_auth(tls_registry):
    result = ansible_module(
        MODULE,
        {
            "image": f"{tls_registry.address}/private/app:v1",
            "ca_path": str(tls_registry.ca_path),
            "username": "alice",
            "password": "wonderland",
        },
    )
    assert result["digest"] == registry_digest("v1"), result
    assert "wonderland" not in result["_stdout"]


def test_tls_without_ca_path_is_refused_with_advice(tls_registry):
    result = ansible_module(
        MODULE, {"image": f"{tls_registry.address}/private/app:v1", "username": "alice", "password": "wonderland"}
    )
    assert result["failed"] is True
    assert "TLS verification failed" in result["msg"]
    assert "ca_path" in result["msg"]


def test_tls_validate_certs_false(tls_registry):
    client = RegistryClient(validate_certs=False, username="alice", password="wonderland")
    assert client.resolve(parse_reference(f"{tls_registry.address}/private/app:v1")).digest == registry_digest("v1")


def test_basic_auth_without_credentials(tls_registry, tmp_path):
    client = RegistryClient(ca_path=str(tls_registry.ca_path), docker_config_path=str(tmp_path / "none.json"))
    with pytest.raises(Unauthorized, match="requires a login"):
        client.resolve(parse_reference(f"{tls_registry.address}/private/app:v1"))


def test_basic_auth_wrong_password(tls_registry):
    client = RegistryClient(ca_path=str(tls_registry.ca_path), username="alice", password="nope")
    with pytest.raises(Unauthorized, match="rejected the credentials"):
        client.resolve(parse_reference(f"{tls_registry.address}/private/app:v1"))


def test_basic_auth_from_docker_config(tls_registry, tmp_path):
    import base64

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"auths": {tls_registry.address: {"auth": base64.b64encode(b"alice:wonderland").decode()}}})
    )
    client = RegistryClient(ca_path=str(tls_registry.ca_path), docker_config_path=str(config))
    assert client.resolve(parse_reference(f"{tls_registry.address}/private/app:v1")).digest == registry_digest("v1")


# ------------------------------------------------------------------ token auth


def test_token_anonymous_public(token_registry):
    result = ansible_module(MODULE, {"image": f"{token_registry.address}/public/app:v2"})
    assert result["digest"] == registry_digest("v2"), result


def test_token_private_needs_credentials(token_registry, tmp_path):
    ref = parse_reference(f"{token_registry.address}/private/app:v1")
    with pytest.raises(Unauthorized, match="requires credentials"):
        RegistryClient(docker_config_path=str(tmp_path / "none.json")).resolve(ref)
    with pytest.raises(Unauthorized, match="refused user 'alice'"):
        RegistryClient(username="alice", password="bad").resolve(ref)
    assert RegistryClient(username="alice", password="wonderland").resolve(ref).digest == registry_digest("v1")


def test_token_forbidden(token_registry):
    with pytest.raises(Forbidden, match="denied pull access"):
        RegistryClient(username="alice", password="wonderland").resolve(
            parse_reference(f"{token_registry.address}/secret/app:v1")
        )


def test_not_found_vs_unauthorised_vs_forbidden_differ(token_registry, tmp_path):
    messages = set()
    for cls, ref, creds in [
        (ManifestNotFound, f"{token_registry.address}/public/app:missing", {}),
        (Unauthorized, f"{token_registry.address}/private/app:v1", {"docker_config_path": str(tmp_path / "x.json")}),
        (Forbidden, f"{token_registry.address}/secret/app:v1", {}),
    ]:
        with pytest.raises(cls) as info:
            RegistryClient(**creds).resolve(parse_reference(ref))
        messages.add(str(info.value).split(":", maxsplit=1)[0])
    assert len(messages) == 3


def test_hundred_tags_one_call_reuses_token(token_registry):
    issuer = token_registry.extra["issuer"]
    before = len(issuer.requests)
    refs = [parse_reference(f"{token_registry.address}/public/app:t{n}") for n in range(100)]
    with RegistryClient() as client:
        results = client.resolve_many(refs)
    assert {r.digest for r in results} == {registry_digest("v1")}
    # Concurrent first requests may race for the first token; after that it is reused.
    assert len(issuer.requests) - before <= 8


# ------------------------------------------------------------------ multi-arch index


def test_multiarch_index_digest_and_platform(multiarch):
    registry, index_digest = multiarch
    ref = f"{registry.address}/multi/app:release"
    result = ansible_module(MODULE, {"image": ref, "platform": "linux/arm64"})
    assert result["digest"] == index_digest == skopeo_digest(ref, "--tls-verify=false")
    assert result["media_type"] == "application/vnd.oci.image.index.v1+json"
    assert result["platform_digest"] == registry_digest("v2")
    assert result["platforms"] == [
        {"platform": "linux/amd64", "digest": registry_digest("v1")},
        {"platform": "linux/arm64/v8", "digest": registry_digest("v2")},
    ]
    assert docker_pull_repo_digest(ref) == index_digest


def test_multiarch_missing_platform(multiarch):
    registry = multiarch[0]
    result = ansible_module(MODULE, {"image": f"{registry.address}/multi/app:release", "platform": "linux/s390x"})
    assert result["failed"] is True
    assert "has no linux/s390x image (index lists: linux/amd64, linux/arm64/v8)" in result["msg"]


def test_image_id_is_named_as_such(lab):
    image_id = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", f"{APP_REPO}:v1"], capture_output=True, text=True, check=True
    ).stdout.strip()
    result = ansible_module(MODULE, {"image": f"{APP_REPO}@{image_id}", "retries": 0})
    assert result["failed"] is True
    assert "is a blob in 127.0.0.1:5000/pinned/openwebui (the image config, i.e. a local image ID)" in result["msg"]


@pytest.mark.parametrize("asked", ["linux/arm64/v8", "linux/arm64", "linux/aarch64", "LINUX/ARM64/V8"])
def test_platforms_match_as_docker_normalises_them(multiarch, asked):
    registry = multiarch[0]
    for tag in ("release", "novariant"):
        result = ansible_module(MODULE, {"image": f"{registry.address}/multi/app:{tag}", "platform": asked})
        assert result.get("platform_digest") == registry_digest("v2"), (tag, result)


def test_a_malformed_platform_is_one_line_before_any_request(multiarch):
    result = ansible_module(MODULE, {"image": f"{multiarch[0].address}/multi/app:release", "platform": "arm64"})
    assert result["failed"] is True
    assert result["msg"].startswith("platform 'arm64' is not os/architecture[/variant]"), result["msg"]


# ------------------------------------------------------------------ registries as met in the field


@pytest.mark.parametrize(
    ("behaviour", "what"),
    [
        ({"head_405": True}, "HEAD refused with 405 (Nexus)"),
        ({"content_type": "application/json"}, "manifest served as application/json with its digest"),
        ({"content_type": "application/octet-stream", "drop_digest": True}, "octet-stream, no digest (Artifactory)"),
        ({"head_405": True, "content_type": "application/json", "drop_digest": True}, "all of them at once"),
    ],
)
def test_registries_that_behave_like_real_ones_resolve(lab, behaviour, what):
    proxy = BehaviourProxy(REGISTRY, **behaviour)
    try:
        result = ansible_module(MODULE, {"image": f"{proxy.address}/pinned/openwebui:v1"})
        assert result.get("digest") == registry_digest("v1"), (what, result)
        assert result["media_type"] in (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
        ), what
        assert any(method == "GET" and "/manifests/" in path for method, path, _auth in proxy.seen), what
    finally:
        proxy.stop()


def test_a_generic_content_type_that_is_not_a_manifest_is_still_refused(scripted_server):
    port, handler = scripted_server
    handler.script = [
        (200, {"Content-Type": "application/json"}, b""),
        (200, {"Content-Type": "application/octet-stream"}, b'{"hello": "world"}'),
    ]
    with pytest.raises(RegistryProtocolError, match="not an image manifest"):
        RegistryClient().resolve(parse_reference(f"127.0.0.1:{port}/a/b:v1"))


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory, lab):
    """A token registry that redirects its manifests to a mirror with a token service of its own."""
    started, stops = {}, []
    for name in ("origin", "mirror"):
        directory = tmp_path_factory.mktemp(name)
        issuer = TokenIssuer(directory, service=f"{name}-registry", issuer=f"{name}-issuer")
        plain = start_registry(directory, f"{name}-seed")
        try:
            copy_image("v1", f"{plain.address}/public/app:v1", ["--dest-tls-verify=false"])
        finally:
            plain.stop()
        registry = start_registry(directory, name, token=issuer)
        started[name] = (registry, issuer)
        stops += [registry.stop, issuer.stop]
    at_mirror = BehaviourProxy(started["mirror"][0].address)
    origin = BehaviourProxy(started["origin"][0].address, redirect_to=at_mirror.address)
    stops += [origin.stop, at_mirror.stop]
    try:
        yield origin, at_mirror, started["origin"][1], started["mirror"][1]
    finally:
        for stop in stops:
            stop()


def _token_issuer(authorization: str) -> str:
    import base64

    payload = authorization.split(" ", 1)[1].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["iss"]


def test_a_redirect_to_a_mirror_is_authenticated_for_the_mirror(mirrored):
    origin, at_mirror, origin_issuer, mirror_issuer = mirrored
    client = RegistryClient(username="alice", password="wonderland")
    assert client.resolve(parse_reference(f"{origin.address}/public/app:v1")).digest == registry_digest("v1")
    # Each hop got a token from the service that guards it, and alice's password went to the origin's only.
    assert {r["user"] for r in origin_issuer.requests} == {"alice"}
    assert mirror_issuer.requests, "the mirror's token service was never asked"
    assert {r["user"] for r in mirror_issuer.requests} == {None}
    mirror_tokens = [auth for _method, _path, auth in at_mirror.seen if auth]
    assert mirror_tokens, "the mirror was never sent a token"
    assert {_token_issuer(auth) for auth in mirror_tokens} == {"mirror-issuer"}
    origin_tokens = [auth for _method, _path, auth in origin.seen if auth]
    assert {_token_issuer(auth) for auth in origin_tokens} == {"origin-issuer"}
