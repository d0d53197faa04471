# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files that survive a crash whole, and exclusive locks on files.

A file is replaced through a temporary file in its own folder (a rename is atomic only within one filesystem):
written with its mode, fsynced, renamed over the old one, then the folder fsynced so that the rename itself
survives a power cut. A crash at any instant leaves the old content or the new one, never half of either.

A lock is ``flock``: the kernel lets go when the holding process dies (killed, crashed, host rebooted), so a lock
never outlives its run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import time
from typing import BinaryIO, Callable, Iterator, Optional, Union

LOCK_POLL_SECONDS = 0.1
# Text (written as UTF-8), or a function that writes the bytes to the file it is given (a stream too big to hold).
Content = Union[str, Callable[[BinaryIO], object]]


def fsync_dir(path: str) -> None:
    """Make the renames and removals in folder ``path`` durable (best effort: not every filesystem can)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _removed_on_failure(temp: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_temp(path: str, content: Content, mode: int) -> str:
    """A temporary file beside ``path`` holding ``content``, on disk and with ``mode``; gone again on failure."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    with _removed_on_failure(temp), os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        if callable(content):
            content(handle)
        else:
            handle.write(content.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return temp


def replace_with(temp: str, path: str) -> None:
    """Rename ``temp`` (from ``write_temp``) over ``path`` durably; ``temp`` is removed when the rename fails."""
    with _removed_on_failure(temp):
        os.replace(temp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def write_atomic(path: str, content: Content, mode: int) -> None:
    """Replace ``path`` with ``content`` and ``mode``, whole or not at all."""
    replace_with(write_temp(path, content, mode), path)


def lock_exclusively(fd: int, until: Optional[float]) -> bool:
    """Take an exclusive ``flock`` on ``fd``, trying again until ``until`` (``time.monotonic()``; None: once only).
    False when another process still holds it."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        if until is None or time.monotonic() >= until:
            return False
        time.sleep(LOCK_POLL_SECONDS)
