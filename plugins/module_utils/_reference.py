# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parse and normalise container image references and digests.

Follows the grammar of the distribution reference format (the one docker
uses), including Docker Hub's short names: ``nginx`` is
``docker.io/library/nginx:latest``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
DEFAULT_TAG = "latest"
NAME_MAX_LENGTH = 255

# The distribution reference grammar, ASCII only (Go's \w is [0-9A-Za-z_]); every match is a fullmatch,
# so no trailing newline ever slips through the way Python's ``$`` lets it.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", re.ASCII)
_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"(?P<host>{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[(?P<ipv6>[0-9a-fA-F:]+)\])(?::(?P<port>[0-9]+))?", re.ASCII
)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
_IMAGE_ID_RE = re.compile(r"(?:sha256:)?[a-f0-9]{64}", re.ASCII)
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}


class ImageReferenceError(ValueError):
    """A reference or digest that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ImageReference:
    registry: str
    repository: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    @property
    def name(self) -> str:
        """``registry/repository``, the canonical name."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host:port that serves the registry API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def host(self) -> str:
        """The registry host without its port (brackets removed for IPv6)."""
        host = self.registry
        if host.startswith("["):
            return host[1 : host.index("]")]
        return host.rsplit(":", 1)[0] if ":" in host else host

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def by_digest(self) -> str:
        """``registry/repository@digest``: the only form production runs."""
        if not self.digest:
            raise ImageReferenceError(f"{self} has no digest: resolve it first (pinned.release.resolve_digest)")
        return f"{self.name}@{self.digest}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_digest(text: str) -> str:
    """Validate ``algorithm:hex`` and return it; an image ID is not a digest of a manifest."""
    if not isinstance(text, str) or ":" not in text:
        raise ImageReferenceError(
            f"invalid digest {text!r}: expected sha256:<64 hex digits> (a repository digest, not an image ID)"
        )
    algorithm, hexpart = text.split(":", 1)
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise ImageReferenceError(f"invalid digest {text!r}: unsupported algorithm {algorithm!r}, use sha256")
    if len(hexpart) != expected or not re.fullmatch(r"[0-9a-f]+", hexpart, re.ASCII):
        raise ImageReferenceError(
            f"invalid digest {text!r}: {algorithm} needs exactly {expected} lowercase hex digits, got {len(hexpart)}"
        )
    return text


def _check_domain(domain: str, name: str) -> None:
    match = _DOMAIN_RE.fullmatch(domain)
    if not match:
        raise ImageReferenceError(
            f"invalid registry host {domain!r} in image reference {name!r}: expected host[:port], IPv6 in brackets"
        )
    if match.group("ipv6"):
        try:
            ipaddress.IPv6Address(match.group("ipv6"))
        except ValueError:
            raise ImageReferenceError(f"invalid IPv6 address {domain!r} in image reference {name!r}") from None
    port = match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise ImageReferenceError(f"invalid port {port} in registry {domain!r} of {name!r}: ports are 1 to 65535")


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    # docker's rule: the first component is a registry when it looks like a host.
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        _check_domain(first, name)
        return first, rest
    return DOCKER_HUB, name


def parse_reference(text: str, default_tag: Optional[str] = DEFAULT_TAG) -> ImageReference:
    """Parse ``[registry[:port]/]repository[:tag][@digest]``.

    ``default_tag`` applies when neither tag nor digest is given (``None`` keeps it empty).
    """
    if not isinstance(text, str):
        raise ImageReferenceError(f"image reference must be a string, got {type(text).__name__}")
    if not text or text != text.strip():
        raise ImageReferenceError(f"invalid image reference {text!r}: empty or surrounded by white space")
    if not text.isascii() or not text.isprintable() or any(c.isspace() for c in text):
        raise ImageReferenceError(
            f"invalid image reference {text!r}: only ASCII letters, digits and '/:@._-' may appear, no white space"
        )
    if _IMAGE_ID_RE.fullmatch(text):
        raise ImageReferenceError(
            f"{text!r} looks like an image ID, not an image: give repository@sha256:<digest> "
            "(an image ID is not a digest; docker images --digests shows the repository digest)"
        )

    if text.startswith("[") and "/" not in text:
        raise ImageReferenceError(f"invalid image reference {text!r}: a registry host, no repository after it")
    remainder, digest = text, None
    if "@" in text:
        remainder, digest = text.rsplit("@", 1)
        digest = parse_digest(digest)

    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise ImageReferenceError(
                f"invalid tag {tag!r} in {text!r}: letters, digits, '_', '.', '-' only, at most 128, not starting with '.' or '-'"
            )

    if not remainder:
        raise ImageReferenceError(f"invalid image reference {text!r}: no repository name")
    registry, path = _split_domain(remainder)
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _PATH_RE.fullmatch(path):
        hint = "must be lowercase" if path.lower() != path and _PATH_RE.fullmatch(path.lower()) else "is malformed"
        raise ImageReferenceError(
            f"invalid repository {path!r} in {text!r}: the name {hint} "
            "(lowercase letters, digits and single '.', '_', '__' or '-' separators between '/' components)"
        )
    if len(path) > NAME_MAX_LENGTH:
        raise ImageReferenceError(
            f"invalid image reference {text!r}: repository path longer than {NAME_MAX_LENGTH} characters"
        )

    if tag is None and digest is None:
        tag = default_tag
    return ImageReference(registry=registry, repository=path, tag=tag, digest=digest)


def parse_pinned_reference(text: str) -> ImageReference:
    """A reference that must carry a digest: production never runs a tag."""
    ref = parse_reference(text, default_tag=None)
    if not ref.digest:
        raise ImageReferenceError(
            f"{text!r} is not pinned: production runs only repository@sha256:<digest> references; "
            "resolve the tag with pinned.release.resolve_digest"
        )
    return ref
