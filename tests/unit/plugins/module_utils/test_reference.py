# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pinned.release.plugins.module_utils._reference import (
    ImageReference,
    ImageReferenceError,
    parse_digest,
    parse_pinned_reference,
    parse_reference,
)

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("library/nginx", "docker.io", "library/nginx", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", "latest", None),
        ("index.docker.io/library/nginx:x", "docker.io", "library/nginx", "x", None),
        ("acme/open-webui:release", "docker.io", "acme/open-webui", "release", None),
        ("ghcr.io/acme/open-webui:release", "ghcr.io", "acme/open-webui", "release", None),
        ("ghcr.io/open-webui/open-webui:main", "ghcr.io", "open-webui/open-webui", "main", None),
        ("127.0.0.1:5000/pinned/openwebui:v1", "127.0.0.1:5000", "pinned/openwebui", "v1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", None),
        ("[::1]:5000/app:v1", "[::1]:5000", "app", "v1", None),
        (f"ghcr.io/acme/app@{D}", "ghcr.io", "acme/app", None, D),
        (f"ghcr.io/acme/app:release@{D}", "ghcr.io", "acme/app", "release", D),
        (
            "registry.example.com:443/a__b/c.d/e-f--g:v_1.2-3",
            "registry.example.com:443",
            "a__b/c.d/e-f--g",
            "v_1.2-3",
            None,
        ),
        ("Registry.Example.com/app", "Registry.Example.com", "app", "latest", None),
    ],
)
def test_parse_reference(text, registry, repository, tag, digest):
    assert parse_reference(text) == ImageReference(registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (" nginx", "white space"),
        ("ghcr.io/Acme/app:v1", "must be lowercase"),
        ("ghcr.io/acme/app:", "invalid tag"),
        ("ghcr.io/acme/app:-x", "invalid tag"),
        ("ghcr.io/acme/app:" + "t" * 129, "invalid tag"),
        ("ghcr.io/acme//app", "malformed"),
        ("ghcr.io/acme/app_", "malformed"),
        ("ghcr.io/acme/app@sha256:abc", "64 lowercase hex"),
        ("ghcr.io/acme/app@sha256:" + "A" * 64, "64 lowercase hex"),
        ("ghcr.io/acme/app@md5:" + "a" * 32, "unsupported algorithm"),
        ("ghcr.io/acme/app@" + "a" * 64, "not an image ID"),
        ("bad_host.io:x/app", "invalid registry host"),
        ("ghcr.io/" + "a" * 260, "longer than"),
        (":tag", "no repository"),
    ],
)
def test_parse_reference_rejects(text, message):
    with pytest.raises(ImageReferenceError, match=message):
        parse_reference(text)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (D, True),
        ("sha512:" + "b" * 128, True),
        ("sha256:" + "a" * 63, False),
        ("sha256:" + "g" * 64, False),
        ("sha1:" + "a" * 40, False),
        ("a" * 64, False),
        (12, False),
    ],
)
def test_parse_digest(text, ok):
    if ok:
        assert parse_digest(text) == text
    else:
        with pytest.raises(ImageReferenceError):
            parse_digest(text)


@pytest.mark.parametrize(
    ("text", "by_digest"),
    [
        (f"ghcr.io/acme/app@{D}", f"ghcr.io/acme/app@{D}"),
        (f"ghcr.io/acme/app:release@{D}", f"ghcr.io/acme/app@{D}"),
        (f"acme/app@{D}", f"docker.io/acme/app@{D}"),
    ],
)
def test_pinned_reference_canonical_form(text, by_digest):
    assert parse_pinned_reference(text).by_digest == by_digest


@pytest.mark.parametrize("text", ["ghcr.io/acme/app:release", "ghcr.io/acme/app"])
def test_pinned_reference_refuses_tags(text):
    with pytest.raises(ImageReferenceError, match="not pinned"):
        parse_pinned_reference(text)


@pytest.mark.parametrize(
    ("text", "api_host", "loopback"),
    [
        ("nginx", "registry-1.docker.io", False),
        ("ghcr.io/a/b", "ghcr.io", False),
        ("127.0.0.1:5000/a", "127.0.0.1:5000", True),
        ("127.8.9.10:5000/a", "127.8.9.10:5000", True),
        ("localhost:5000/a", "localhost:5000", True),
        ("[::1]:5000/a", "[::1]:5000", True),
        ("10.0.0.1:5000/a", "10.0.0.1:5000", False),
    ],
)
def test_api_host_and_loopback(text, api_host, loopback):
    ref = parse_reference(text)
    assert ref.api_host == api_host
    assert ref.is_loopback is loopback


def test_str_round_trips():
    for text in ["ghcr.io/acme/app:release", f"ghcr.io/acme/app:release@{D}", "127.0.0.1:5000/pinned/openwebui:v1"]:
        assert str(parse_reference(text)) == text


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_parser_raises_only_its_own_error(text):
    try:
        ref = parse_reference(text)
    except ImageReferenceError:
        return
    assert parse_reference(str(ref)) == ref


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(
        r"\A[a-z0-9]{1,10}\.[a-z]{2,5}(:[0-9]{2,5})?/[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20})?\Z"
    )
)
def test_fuzz_valid_shapes_parse(text):
    assert parse_reference(text).repository
