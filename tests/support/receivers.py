# SPDX-License-Identifier: GPL-3.0-or-later
"""Real notification receivers on 127.0.0.1 for the tests: a webhook server and an SMTP server that record
what they get, and can answer 500, be slow, or refuse."""

from __future__ import annotations

import email
import json
import socketserver
import threading
import time
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """Records every POST (path, headers, JSON body). ``/fail...`` answers 500; ``/slow...`` answers after 30 s."""

    def __init__(self) -> None:
        self.posts: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                if self.path.startswith("/slow"):
                    time.sleep(30)
                status = 500 if self.path.startswith("/fail") else 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    return  # the sender gave up on /slow, as its timeout says it must

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list:
        return [p["body"] for p in self.posts if p["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """A plain SMTP server (RFC 5321's minimum) that keeps each message; ``refuse=True`` answers 554 at once."""

    def __init__(self, refuse: bool = False) -> None:
        self.messages: list = []
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                if refuse:
                    self.reply("554 5.3.2 this server accepts no mail")
                    return
                self.reply("220 receiver ESMTP")
                data = None
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    if data is not None:
                        if line in (b".\r\n", b".\n"):
                            receiver.messages.append(email.message_from_bytes(b"".join(data), policy=policy.default))
                            data = None
                            self.reply("250 2.0.0 queued")
                        else:
                            data.append(line[1:] if line.startswith(b"..") else line)
                        continue
                    verb = line.split(b" ", 1)[0].strip().upper()
                    if verb in (b"EHLO", b"HELO"):
                        self.reply("250 receiver")
                    elif verb == b"DATA":
                        data = []
                        self.reply("354 end with .")
                    elif verb == b"QUIT":
                        self.reply("221 bye")
                        return
                    else:  # MAIL, RCPT, RSET, NOOP
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
