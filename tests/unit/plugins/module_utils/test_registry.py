# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import base64

import pytest

from ansible_collections.pinned.release.plugins.module_utils._registry import (
    MAX_RETRY_WAIT,
    Credentials,
    InvalidPlatform,
    Unauthorized,
    backoff_delay,
    config_keys_for,
    credentials_from_docker_config,
    manifest_type_of_body,
    normalize_platform,
    parse_challenge,
    parse_retry_after,
    platform_string,
    ratelimit_remaining,
    select_platform,
    sha256_digest,
)


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/nginx:pull",
            },
        ),
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        ("Bearer realm=https://x/token,service=svc", "bearer", {"realm": "https://x/token", "service": "svc"}),
        ('Bearer realm="a \\"q\\" b"', "bearer", {"realm": 'a \\"q\\" b'}),
        ("", "", {}),
    ],
)
def test_parse_challenge(header, scheme, params):
    assert parse_challenge(header) == (scheme, params)


@pytest.mark.parametrize(
    ("value", "now", "expected"),
    [
        (None, 0, None),
        ("", 0, None),
        ("7", 0, 7.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0, 10.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0, 0.0),
        ("soon", 0, None),
    ],
)
def test_parse_retry_after(value, now, expected):
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (0, None, 0.5),
        (1, None, 1.0),
        (3, None, 4.0),
        (20, None, MAX_RETRY_WAIT),
        (0, 3.0, 3.0),
        (0, 600.0, MAX_RETRY_WAIT),
    ],
)
def test_backoff_delay(attempt, retry_after, expected):
    assert backoff_delay(attempt, retry_after) == expected


PLATFORMS = [
    {"platform": "linux/amd64", "digest": "sha256:amd"},
    {"platform": "linux/arm64/v8", "digest": "sha256:arm"},
    {"platform": "linux/arm/v7", "digest": "sha256:armv7"},
]


@pytest.mark.parametrize(
    ("wanted", "digest"),
    [
        ("linux/amd64", "sha256:amd"),
        ("LINUX/AMD64", "sha256:amd"),
        ("linux/arm64", "sha256:arm"),
        ("linux/arm64/v8", "sha256:arm"),
        ("linux/arm/v7", "sha256:armv7"),
        ("linux/s390x", None),
        ("windows/amd64", None),
        ("linux/aarch64", "sha256:arm"),
        ("linux/x86_64", "sha256:amd"),
        ("linux/amd64/v1", "sha256:amd"),
        ("linux/armhf", "sha256:armv7"),
        ("linux/arm", "sha256:armv7"),
        ("linux/arm/v6", None),
    ],
)
def test_select_platform(wanted, digest):
    assert select_platform(PLATFORMS, wanted) == digest


def test_an_index_listing_arm64_without_its_variant_serves_arm64_v8():
    listed = [{"platform": "linux/amd64", "digest": "sha256:amd"}, {"platform": "linux/arm64", "digest": "sha256:arm"}]
    assert select_platform(listed, "linux/arm64/v8") == "sha256:arm"


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm64/8", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v9", "linux/arm64/v9"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/i386", "linux/386"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("macos/arm64", "darwin/arm64"),
        (" Linux/AMD64 ", "linux/amd64"),
    ],
)
def test_normalize_platform(text, normal):
    assert normalize_platform(text) == normal


@pytest.mark.parametrize("text", ["arm64", "linux/", "/amd64", "linux/arm64/v8/x", ""])
def test_a_malformed_platform_is_named(text):
    with pytest.raises(InvalidPlatform, match="is not os/architecture"):
        normalize_platform(text)


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        (b'{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}',
         "application/vnd.docker.distribution.manifest.v2+json"),
        (b'{"schemaVersion": 2, "manifests": []}', "application/vnd.oci.image.index.v1+json"),
        (b'{"schemaVersion": 2, "config": {}, "layers": []}', "application/vnd.oci.image.manifest.v1+json"),
        (b'{"schemaVersion": 1, "fsLayers": []}', None),
        (b'{"hello": "world"}', None),
        (b"[1, 2]", None),
        (b"<html>login</html>", None),
        (b"", None),
    ],
)  # fmt: skip
def test_the_body_tells_a_manifest_type_when_the_header_is_generic(body, media_type):
    assert manifest_type_of_body(body) == media_type


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({"platform": {"os": "linux", "architecture": "amd64"}}, "linux/amd64"),
        ({"platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}, "linux/arm64/v8"),
        ({}, "unknown/unknown"),
    ],
)
def test_platform_string(entry, text):
    assert platform_string(entry) == text


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("config", "registry", "helpers", "expected"),
    [
        ({}, "ghcr.io", {}, Credentials()),
        ({"auths": {"ghcr.io": {"auth": _auth("u", "p:w")}}}, "ghcr.io", {}, Credentials("u", "p:w")),
        ({"auths": {"https://ghcr.io": {"auth": _auth("u", "p")}}}, "ghcr.io", {}, Credentials("u", "p")),
        (
            {"auths": {"https://index.docker.io/v1/": {"auth": _auth("hub", "t")}}},
            "docker.io",
            {},
            Credentials("hub", "t"),
        ),
        ({"auths": {"ghcr.io": {"identitytoken": "idt"}}}, "ghcr.io", {}, Credentials(identity_token="idt")),
        ({"auths": {"ghcr.io": {"username": "u", "password": "p"}}}, "ghcr.io", {}, Credentials("u", "p")),
        ({"auths": {"other.io": {"auth": _auth("u", "p")}}}, "ghcr.io", {}, Credentials()),
        (
            {"credHelpers": {"ghcr.io": "gh"}, "auths": {"ghcr.io": {"auth": _auth("inline", "x")}}},
            "ghcr.io",
            {("gh", "ghcr.io"): {"Username": "helper", "Secret": "s"}},
            Credentials("helper", "s"),
        ),
        (
            {"credsStore": "store", "auths": {"ghcr.io": {}}},
            "ghcr.io",
            {("store", "ghcr.io"): {"Username": "<token>", "Secret": "refresh"}},
            Credentials(identity_token="refresh"),
        ),
        (
            {"credsStore": "store", "auths": {"ghcr.io": {"auth": _auth("inline", "x")}}},
            "ghcr.io",
            {},
            Credentials("inline", "x"),
        ),
    ],
)
def test_credentials_from_docker_config(config, registry, helpers, expected):
    calls = []

    def runner(helper, server):
        calls.append((helper, server))
        return helpers.get((helper, server), {})

    assert credentials_from_docker_config(config, registry, helper_runner=runner) == expected


def test_credentials_bad_base64_is_a_clear_error():
    with pytest.raises(Unauthorized, match="not base64"):
        credentials_from_docker_config({"auths": {"ghcr.io": {"auth": "!!!"}}}, "ghcr.io")


def test_docker_hub_config_key_comes_first():
    assert config_keys_for("docker.io")[0] == "https://index.docker.io/v1/"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"ratelimit-remaining": "76;w=21600"}, "76"), ({}, None)],
)
def test_ratelimit_remaining(headers, expected):
    assert ratelimit_remaining(headers) == expected


def test_sha256_digest():
    assert sha256_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
