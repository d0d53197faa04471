# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTP to a host's own nginx and apps: a whole exchange is bounded, so a slow-drip answer never holds the lock."""

from __future__ import annotations

import socket
import threading
import time

from ansible_collections.pinned.release.plugins.module_utils._http import request


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
