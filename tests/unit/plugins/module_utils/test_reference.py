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
        r"\A[a-z0-9]{1,10}\.[a-z]{2,5}(:[1-9][0-9]{1,3})?/[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20})?\Z"
    )
)
def test_fuzz_valid_shapes_parse(text):
    assert parse_reference(text).repository


# The distribution reference grammar's own documented examples (its reference tests), normalised the way
# docker normalises a name: (text, registry, repository, tag) or (text, error fragment).
HEX512 = "f" * 128
GRAMMAR_VALID = [
    ("test_com", "docker.io", "library/test_com", "latest"),
    ("test.com:tag", "docker.io", "library/test.com", "tag"),
    ("test.com:5000", "docker.io", "library/test.com", "5000"),
    ("test.com/repo:tag", "test.com", "repo", "tag"),
    ("test:5000/repo", "test:5000", "repo", "latest"),
    ("test:5000/repo:tag", "test:5000", "repo", "tag"),
    ("lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase"),
    ("a/" * 127 + "a:tag-puts-this-over-max", "docker.io", "a/" * 127 + "a", "tag-puts-this-over-max"),
    ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "latest"),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag"),
    ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", "test.example.com"),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com"),
    ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080"),
    ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080"),
    ("192.168.1.1/repo", "192.168.1.1", "repo", "latest"),
    ("192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", "latest"),
    ("[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", "latest"),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag"),
    ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", "latest"),
    ("[::1]:5000/repo", "[::1]:5000", "repo", "latest"),
    ("registry.example.com:65535/repo", "registry.example.com:65535", "repo", "latest"),
]
GRAMMAR_INVALID = [
    ("", "empty"),
    (":justtag", "no repository"),
    ("@sha256:" + "f" * 64, "no repository"),
    ("repo@sha256:ffffffffffffffffffffffffffffffffff", "64 lowercase hex"),
    ("validname@invaliddigest:" + "f" * 64, "unsupported algorithm"),
    ("Uppercase:tag", "must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
    ("a/" * 128 + "a:tag", "longer than 255"),
    ("aa/asdf$$^/aa", "malformed"),
    ("[2001:db8::1]", "no repository"),
    ("[2001:db8::1]:5000", "no repository"),
    ("[2001:db8::1]:tag", "no repository"),
    ("[fe80::1%eth0]:5000/repo", "invalid registry host"),
    ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "looks like an image ID"),
    # What the review found accepted (issue 17).
    ("sha256:" + "1a" * 32, "looks like an image ID"),
    ("repo:tag\n@sha256:" + "f" * 64, "no white space"),
    ("repo\n@sha256:" + "f" * 64, "no white space"),
    ("repo:tag\n", "white space"),
    ("repo:\uff54\uff41\uff47", "only ASCII"),  # full-width "tag"
    ("repo:v\u0661", "only ASCII"),  # an Arabic-Indic digit
    ("\uff52\uff45\uff50\uff4f", "only ASCII"),
    ("[...]:5000/repo", "invalid registry host"),
    ("[1:2:3]:5000/repo", "invalid IPv6"),
    ("[1.2.3.4]/repo", "invalid registry host"),
    ("registry.example.com:99999/repo", "ports are 1 to 65535"),
    ("registry.example.com:0/repo", "ports are 1 to 65535"),
    ("registry.example.com:/repo", "invalid registry host"),
]


@pytest.mark.parametrize(("text", "registry", "repository", "tag"), GRAMMAR_VALID)
def test_the_grammars_valid_examples(text, registry, repository, tag):
    assert parse_reference(text) == ImageReference(registry, repository, tag, None)


@pytest.mark.parametrize(("text", "message"), GRAMMAR_INVALID)
def test_the_grammars_invalid_examples(text, message):
    with pytest.raises(ImageReferenceError, match=message):
        parse_reference(text)


def test_a_sha512_digest_with_a_punycode_host():
    text = f"xn--7o8h.com/myimage:xn--7o8h.com@sha512:{HEX512}"
    assert parse_reference(text) == ImageReference("xn--7o8h.com", "myimage", "xn--7o8h.com", f"sha512:{HEX512}")


# Strategies built from the grammar itself: whatever they produce is a valid reference.
_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])
_component = st.builds(lambda first, rest: first + "".join(s + a for s, a in rest), _alnum,
                       st.lists(st.tuples(_separator, _alnum), max_size=2))  # fmt: skip
_path = st.lists(_component, min_size=2, max_size=4).map("/".join)
_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_host = st.one_of(
    st.lists(_label, min_size=2, max_size=3).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: f"[{address}]"),
)
_domain = st.builds(lambda host, port: host + (f":{port}" if port else ""), _host,
                    st.one_of(st.none(), st.integers(1, 65535)))  # fmt: skip
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}", fullmatch=True)
_digest = st.from_regex(r"[a-f0-9]{64}", fullmatch=True).map(lambda hexpart: f"sha256:{hexpart}")


@settings(max_examples=400, deadline=None)
@given(_domain, _path, st.one_of(st.none(), _tag), st.one_of(st.none(), _digest))
def test_every_reference_the_grammar_makes_parses_and_round_trips(domain, path, tag, digest):
    text = f"{domain}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ref = parse_reference(text, default_tag=None)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == text


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=80), st.sampled_from(["", "\n", "\r", "\t", " ", "\u00a0", "\u2028", "\u00e9", "\u0663", "\uff41"])
)
def test_anything_accepted_is_printable_ascii(text, extra):
    try:
        ref = parse_reference(text + extra)
    except ImageReferenceError:
        return
    assert str(ref).isascii()
    assert str(ref).isprintable()
    assert " " not in str(ref)
