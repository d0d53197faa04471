# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP from a host to its own nginx or containers (loopback), with the arrival time of streamed events."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Optional

MAX_BODY = 1024 * 1024


@dataclass
class Response:
    status: int = -1
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    error: Optional[str] = None
    elapsed: float = 0.0
    # (seconds since the request, event text) of each server-sent event, for streamed answers
    events: list = field(default_factory=list)
    # {name: value} of every Set-Cookie of the answer (headers keeps only the last one)
    cookies: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip()


def request(method: str, url: str, headers: Optional[dict] = None, body: Optional[bytes] = None,
            timeout: float = 10.0, server_name: Optional[str] = None) -> Response:  # fmt: skip
    """One request; never raises for network errors (``error`` says what happened, ``status`` is -1).

    ``timeout`` bounds the whole exchange, not each read: an answer that trickles in is cut at the deadline.
    """
    parts = urllib.parse.urlsplit(url)
    start = time.monotonic()
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    expired = threading.Event()
    connection: Optional[http.client.HTTPConnection] = None

    def cut() -> None:
        expired.set()
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread

    watchdog = threading.Timer(timeout, cut)
    watchdog.daemon = True
    try:
        if parts.scheme == "https":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # loopback to this host's own nginx
            connection = _SNIConnection(
                parts.hostname, parts.port or 443, timeout=timeout, context=context, server_name=server_name
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        watchdog.start()
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        result = Response(status=answer.status, headers={k.lower(): v for k, v in answer.getheaders()},
                          cookies=_cookies(answer.msg.get_all("Set-Cookie") or []))  # fmt: skip
        if result.content_type == "text/event-stream":
            chunks = []
            pending = b""
            while True:
                line = answer.readline()
                if not line:
                    break
                chunks.append(line)
                pending += line
                if line in (b"\n", b"\r\n"):
                    result.events.append((round(time.monotonic() - start, 4), pending.decode("utf-8", "replace")))
                    pending = b""
                if sum(len(c) for c in chunks) > MAX_BODY:
                    break
            result.body = b"".join(chunks)
        else:
            result.body = answer.read(MAX_BODY)
        if expired.is_set():
            raise socket.timeout("timed out")
        connection.close()
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        reason = f"no complete answer within {timeout:g} s" if expired.is_set() else _reason(exc)
        return Response(error=reason, elapsed=time.monotonic() - start)
    finally:
        watchdog.cancel()
        if connection is not None:
            connection.close()
    result.elapsed = time.monotonic() - start
    return result


def _cookies(headers: list) -> dict:
    """``{name: value}`` of Set-Cookie header values (attributes such as Path left out; a deletion kept as empty)."""
    found = {}
    for header in headers:
        name, sep, value = header.split(";", 1)[0].partition("=")
        if sep and name.strip():
            found[name.strip()] = value.strip().strip('"')
    return found


def _reason(exc: Exception) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed without an answer"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


def peer_certificate(address: str, port: int, server_name: str, ca_file: Optional[str] = None,
                     timeout: float = 10.0) -> tuple:  # fmt: skip
    """``(certificate, None)``: what the TLS server at ``address:port`` presents for ``server_name``, verified for that
    name against ``ca_file`` (else the system's CAs), as ``ssl`` gives it (``notAfter``, ``issuer``...); ``(None,
    why)`` when it is not trusted or not reached."""
    try:
        context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        return None, f"the CA file {ca_file} cannot be read ({_reason(exc)})"
    try:
        with socket.create_connection((address, port), timeout) as sock, \
                context.wrap_socket(sock, server_hostname=server_name) as tls:  # fmt: skip
            return tls.getpeercert(), None
    except ssl.SSLCertVerificationError as exc:
        return None, _untrusted_reason(exc, server_name, ca_file)
    except (OSError, ssl.SSLError) as exc:
        return None, f"no TLS answer from {address}:{port} for {server_name} ({_reason(exc)})"


def _untrusted_reason(exc: ssl.SSLCertVerificationError, server_name: str, ca_file: Optional[str]) -> str:
    message = str(getattr(exc, "verify_message", "") or exc)
    issuers = f"the CA in {ca_file}" if ca_file else "the system's CAs"
    if "Hostname mismatch" in message or "IP address mismatch" in message:
        return f"the certificate served for {server_name} is not valid for that name"
    if "expired" in message:
        return f"the certificate served for {server_name} has expired"
    if "not yet valid" in message:
        return f"the certificate served for {server_name} is not valid yet"
    if "issuer" in message or "self-signed" in message or "self signed" in message:
        return f"the certificate served for {server_name} does not chain to {issuers}"
    return f"the certificate served for {server_name} is not trusted: {message}"


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to an address, presenting another name in SNI (a tenant's domain on 127.0.0.1)."""

    def __init__(self, host, port, timeout, context, server_name) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name or host
        self._ssl_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self._server_name)
