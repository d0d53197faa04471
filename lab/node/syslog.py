"""The lab node's syslog: every datagram sent to /dev/log, whole (a real syslog may cut long lines; a test of
what modules log must see all of it), one per line in /var/log/messages."""

import os
import socket

SOCKET = "/dev/log"
if os.path.exists(SOCKET):
    os.unlink(SOCKET)
receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
receiver.bind(SOCKET)
os.chmod(SOCKET, 0o666)  # noqa: S103 - /dev/log is for every process of the node
receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
with open("/var/log/messages", "ab", buffering=0) as log:
    while True:
        message = receiver.recv(1 << 20)
        log.write(message.replace(b"\n", b" ") + b"\n")
