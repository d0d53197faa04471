# SPDX-License-Identifier: GPL-3.0-or-later
"""The real Open WebUI of a lab tenant, as a user's browser sees it: through its node's nginx, by its domain."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

from tests.support.lab import NODES

PIPE = '''"""
title: written by the tests
"""


class Pipe:
    def pipe(self, body: dict):
        return "answer of a function written by the tests"
'''


class OpenWebUI:
    def __init__(self, node: str, domain: str) -> None:
        self.node, self.domain = node, domain
        self.base = f"http://127.0.0.1:{NODES[node].http_port}"

    def call(self, method: str, path: str, body=None, token: str | None = None, timeout: float = 60) -> tuple:
        """(status, parsed JSON or text) of one request."""
        headers = {"Host": self.domain, "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                text = answer.read().decode()
                status = answer.status
        except urllib.error.HTTPError as error:
            text, status = error.read().decode(errors="replace"), error.code
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def admin_token(self, email: str, password: str, name: str = "Lab Admin") -> str:
        """Sign the admin up on a fresh tenant (or just in), and return a login token."""
        self.call("POST", "/api/v1/auths/signup", {"name": name, "email": email, "password": password})
        status, answer = self.call("POST", "/api/v1/auths/signin", {"email": email, "password": password})
        assert status == 200, (status, answer)
        return answer["token"]

    def write_function(self, token: str, function_id: str) -> None:
        self.call("DELETE", f"/api/v1/functions/id/{function_id}/delete", token=token)
        status, answer = self.call("POST", "/api/v1/functions/create",
                                   {"id": function_id, "name": function_id, "content": PIPE, "meta": {"description": "x"}},
                                   token=token)  # fmt: skip
        assert status == 200, (status, answer)

    def has_function(self, token: str, function_id: str) -> bool:
        return self.call("GET", f"/api/v1/functions/id/{function_id}", token=token)[0] == 200

    def token_works(self, token: str) -> bool:
        return self.call("GET", "/api/v1/auths/", token=token)[0] == 200

    def version(self) -> str:
        return self.call("GET", "/api/version")[1]["version"]

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/health", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"{self.domain} on {self.node} did not answer /health within {timeout} s")

    def websocket_upgrade(self) -> tuple:
        """A real socket.io websocket handshake through nginx: (HTTP status line, the first frame's payload)."""
        request = (
            "GET /ws/socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: {self.domain}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", NODES[self.node].http_port), timeout=10) as sock:
            sock.sendall(request.encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            head, _sep, rest = data.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].decode()
            # The server speaks first on a socket.io websocket: an engine.io "open" packet in a text frame.
            while len(rest) < 2:
                rest += sock.recv(4096)
            length = rest[1] & 0x7F
            header = 2
            if length == 126:
                while len(rest) < 4:
                    rest += sock.recv(4096)
                length, header = int.from_bytes(rest[2:4], "big"), 4
            while len(rest) < header + length:
                rest += sock.recv(4096)
            return status, rest[header : header + length].decode(errors="replace")
