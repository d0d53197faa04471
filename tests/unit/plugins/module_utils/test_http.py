# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP to a host's own nginx and apps: a whole exchange is bounded, so a slow-drip answer never holds the lock."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import threading
import time

import pytest

from ansible_collections.pinned.release.plugins.module_utils._http import peer_certificate, request
from tests.support.certificates import issue


def serve_once(answer) -> int:
    """A one-connection server on loopback that runs ``answer(connection)``; its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run() -> None:
        connection, _peer = listener.accept()
        connection.recv(65536)
        try:
            answer(connection)
        except OSError:
            pass
        finally:
            connection.close()
            listener.close()

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1]


def trickle(connection) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    for _byte in range(100):  # one byte every 0.2 s: each read is quick, the answer never ends
        connection.sendall(b" ")
        time.sleep(0.2)


def test_an_answer_that_trickles_in_is_cut_at_the_deadline():
    port = serve_once(trickle)
    begin = time.monotonic()
    answer = request("GET", f"http://127.0.0.1:{port}/health", timeout=1.0)
    assert answer.status == -1
    assert answer.error == "no complete answer within 1 s"
    assert time.monotonic() - begin < 5, "bounded by the deadline, not by the 20 s the answer would take"


def test_a_whole_answer_within_the_deadline_is_read():
    port = serve_once(
        lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
    )
    answer = request("GET", f"http://127.0.0.1:{port}/", timeout=5.0)
    assert (answer.status, answer.text, answer.error) == (200, "ok", None)


def test_nobody_listening_is_an_error_not_an_exception():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert request("GET", f"http://127.0.0.1:{port}/", timeout=1.0).error == "connection refused"


# A real TLS handshake with a loopback server: what the certificate check sees of what nginx would serve.
def tls_server(tmp_path, leaf) -> int:
    """A loopback TLS server presenting ``leaf`` to every client until the test ends; its port."""
    cert, key = leaf.write(tmp_path, "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def run() -> None:
        while True:
            try:
                connection, _peer = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError, ssl.SSLError), context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
            connection.close()

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1]


NOW = datetime.datetime.now(datetime.timezone.utc)
LAB_CA = issue("pinned lab CA", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=365))
OTHER_CA = issue("someone else's CA", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=365))


@pytest.mark.parametrize(
    ("leaf", "server_name", "trust", "expected"),
    [
        (
            issue("acme.lab", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=60), ca=LAB_CA),
            "acme.lab",
            LAB_CA,
            None,
        ),
        (
            issue("acme.lab", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=60), ca=LAB_CA),
            "globex.lab",
            LAB_CA,
            "the certificate served for globex.lab is not valid for that name",
        ),
        (
            issue("acme.lab", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=60), ca=OTHER_CA),
            "acme.lab",
            LAB_CA,
            "the certificate served for acme.lab does not chain to the CA in",
        ),
        (
            issue("acme.lab", NOW - datetime.timedelta(days=30), NOW - datetime.timedelta(days=2), ca=LAB_CA),
            "acme.lab",
            LAB_CA,
            "the certificate served for acme.lab has expired",
        ),
        (
            issue("acme.lab", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=60), ca=LAB_CA),
            "acme.lab",
            None,
            "the certificate served for acme.lab does not chain to the system's CAs",
        ),
    ],
)
def test_the_certificate_served_is_trusted_only_for_its_name_and_its_ca(tmp_path, leaf, server_name, trust, expected):
    port = tls_server(tmp_path, leaf)
    ca_file = None
    if trust is not None:
        ca_file = str(tmp_path / "ca.crt")
        (tmp_path / "ca.crt").write_text(trust.pem)
    certificate, why = peer_certificate("127.0.0.1", port, server_name, ca_file, timeout=5)
    if expected is None:
        assert why is None
        assert certificate["notAfter"].endswith("GMT")
        assert ("commonName", "pinned lab CA") in [pair[0] for pair in certificate["issuer"]]
    else:
        assert certificate is None
        assert expected in why, why


def test_a_ca_file_that_cannot_be_read_or_nobody_listening_is_one_line(tmp_path):
    leaf = issue("acme.lab", NOW - datetime.timedelta(days=1), NOW + datetime.timedelta(days=60), ca=LAB_CA)
    port = tls_server(tmp_path, leaf)
    certificate, why = peer_certificate("127.0.0.1", port, "acme.lab", str(tmp_path / "missing.crt"), timeout=5)
    assert certificate is None
    assert why.startswith(f"the CA file {tmp_path}/missing.crt cannot be read")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    certificate, why = peer_certificate("127.0.0.1", free, "acme.lab", None, timeout=5)
    assert certificate is None
    assert why == f"no TLS answer from 127.0.0.1:{free} for acme.lab (connection refused)"
