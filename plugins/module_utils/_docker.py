# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connect to a Docker engine with the Docker SDK for Python (options named as community.docker names them)."""

from __future__ import annotations

import re

try:
    import docker
    from docker.errors import DockerException, NotFound
    from docker.tls import TLSConfig
    from docker.types import Mount
    from requests.exceptions import RequestException

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False

    class DockerException(Exception):  # type: ignore[no-redef]
        pass

    class NotFound(DockerException):  # type: ignore[no-redef]
        pass

    class RequestException(Exception):  # type: ignore[no-redef]
        pass

    Mount = None  # type: ignore[assignment,misc]


DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

DOCKER_ARGUMENT_SPEC = {
    "docker_host": {"type": "str", "default": DEFAULT_DOCKER_HOST, "aliases": ["docker_url"]},
    "tls": {"type": "bool", "default": False},
    "validate_certs": {"type": "bool", "default": False, "aliases": ["tls_verify"]},
    "ca_path": {"type": "path", "aliases": ["ca_cert", "tls_ca_cert", "cacert_path"]},
    "client_cert": {"type": "path", "aliases": ["tls_client_cert", "cert_path"]},
    "client_key": {"type": "path", "aliases": ["tls_client_key", "key_path"]},
    "tls_hostname": {"type": "str"},
    "api_timeout": {"type": "int", "default": 60},
}


class EngineError(Exception):
    """The engine cannot be reached or used; the message says how to fix it."""


def _reason(exc: Exception) -> str:
    text = str(exc)
    for sign in ("No such file or directory", "Permission denied", "Connection refused", "Name or service not known"):
        if sign in text:
            return sign
    return re.sub(r"\s+", " ", text)[:200]


def connect(params: dict):
    """A low-level docker.APIClient, or EngineError naming the socket and the fix."""
    if not HAS_DOCKER:
        raise EngineError(
            "the Docker SDK for Python is needed on the managed host: apt-get install python3-docker (or pip install docker)"
        )
    host = params.get("docker_host") or DEFAULT_DOCKER_HOST
    tls = None
    if params.get("tls") or params.get("validate_certs"):
        client_cert = (params["client_cert"], params["client_key"]) if params.get("client_cert") else None
        tls = TLSConfig(
            client_cert=client_cert,
            ca_cert=params.get("ca_path"),
            verify=params.get("ca_path") if params.get("validate_certs") else False,
            assert_hostname=params.get("tls_hostname") if params.get("validate_certs") else False,
        )
    try:
        return docker.APIClient(base_url=host, version="auto", timeout=params.get("api_timeout", 60), tls=tls)
    except DockerException as exc:
        hint = (
            "start dockerd (systemctl start docker)"
            if host.startswith("unix://")
            else "check the address and TLS options"
        )
        raise EngineError(
            f"cannot reach the Docker engine at {host} ({_reason(exc)}): {hint}, or set docker_host"
        ) from exc


__all__ = ["DOCKER_ARGUMENT_SPEC", "DockerException", "EngineError", "Mount", "NotFound", "RequestException", "connect"]
