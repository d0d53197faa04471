# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a host remembers of a release transaction: its deploy lock, atomic state files, the audit log.

(The per-tenant journal of a move is typed: ``_rollout_record``.)

Every state file here is written atomically (``_fs.write_atomic``), so a crash at any instant leaves either
the old or the new content, never half of one.

The lock is a file held with ``flock`` (``_fs.lock_exclusively``) by the process running the transaction: the
kernel drops the ``flock`` when that process dies, so a lock file whose ``flock`` can be
taken but that still names a run was left by a run that is gone. Such a lock is only taken over when the
caller says so (that run's id, or ``stale`` for a lock older than the documented age).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._fs import fsync_dir, lock_exclusively, write_atomic

JOURNAL_MODE = 0o600
# A check-mode look holds the flock for an instant: a deploy starting then waits this long before it says "busy".
LOCK_GRACE_SECONDS = 2.0


class JournalError(OSError):
    """A state file cannot be read or written; the message names it and what to do."""


class LockBusy(Exception):
    """Another transaction holds the host lock (``live``) or left it behind (not ``live``)."""

    def __init__(self, holder: dict, live: bool) -> None:
        super().__init__(holder.get("run_id", "?"))
        self.holder = holder
        self.live = live


def write_json(path: str, data: dict, mode: int = JOURNAL_MODE) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n", mode)


def read_json(path: str, what: str) -> Optional[dict]:
    """The JSON object in ``path``; None when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read {what} {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise JournalError(
            f"{what} {path} is not valid JSON: inspect it, then move it away (docs/recovery.md)"
        ) from exc
    if not isinstance(data, dict):
        raise JournalError(f"{what} {path} is not a JSON object: inspect it, then move it away (docs/recovery.md)")
    return data


def append_line(path: str, record: dict) -> None:
    """Append one JSON line (one write on an O_APPEND descriptor, then fsync)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o750, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the host lock


def _parse_holder(text: str) -> dict:
    if not text.strip():
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        return {"run_id": "unknown", "corrupt": True}
    return holder if isinstance(holder, dict) else {"run_id": "unknown", "corrupt": True}


def lock_age_seconds(holder: dict, now: float) -> Optional[float]:
    started = holder.get("started_epoch")
    return now - float(started) if isinstance(started, (int, float)) else None


class HostLock:
    """The deploy lock of one host: ``flock`` on a file that also names its holder."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None
        self.holder: dict = {}

    def _open_locked(self, blocking_until: Optional[float]) -> tuple:
        """(fd, content) with the flock held, or raise LockBusy/OSError. Re-opens if the file was replaced.
        ``blocking_until``: a ``time.monotonic()`` to wait until for a live holder (None: do not wait)."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if not lock_exclusively(fd, blocking_until):
                    raise LockBusy(_parse_holder(self._read(fd)), live=True)
                # The holder may have removed the file while we waited: then lock the new one.
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    return fd, self._read(fd)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    @staticmethod
    def _read(fd: int) -> str:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def acquire(
        self,
        holder: dict,
        may_take_over=None,
        wait_for_run: Optional[str] = None,
        wait_seconds: float = 0.0,
        on_take_over=None,
    ) -> dict:
        """Take the lock for ``holder``; returns the dead holder it replaced ({} when the lock was free).

        ``wait_for_run``: when that run still holds the lock, wait up to ``wait_seconds`` for it to end.
        A lock left by a run that is gone is taken over only when ``may_take_over(dead holder)`` says so;
        ``on_take_over(dead holder)`` runs before the holder is replaced (the audit line of the takeover).
        Raises LockBusy when another live run holds it, or a dead run left it and may not be taken over.
        """
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=0o700, exist_ok=True)
        try:
            fd, content = self._open_locked(time.monotonic() + LOCK_GRACE_SECONDS)
        except LockBusy as busy:
            if not wait_for_run or busy.holder.get("run_id") != wait_for_run:
                raise
            fd, content = self._open_locked(time.monotonic() + wait_seconds)
        left = _parse_holder(content)
        if left and left.get("run_id") != holder.get("run_id"):
            if may_take_over is None or not may_take_over(left):
                os.close(fd)
                raise LockBusy(left, live=False)
            if on_take_over is not None:
                on_take_over(left)
        else:
            left = {}
        self._fd = fd
        self._write(holder)
        return left

    def _write(self, holder: dict) -> None:
        """One write at offset 0, padded over the old content (JSON ignores the spaces): a process killed at any
        instant leaves the old holder or the new one, never an empty file that would read as a free lock."""
        data = (json.dumps(holder, sort_keys=True)).encode("utf-8")
        size = os.fstat(self._fd).st_size
        data += b" " * max(0, size - len(data) - 1) + b"\n"
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)
        self.holder = holder

    def release(self) -> None:
        """Remove the lock file (while holding the flock, so no waiter locks a removed file), then let go."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        os.close(self._fd)
        self._fd = None


def peek_lock(path: str) -> tuple:
    """(holder, live) of the lock without taking it: ({}, False) when free."""
    lock = HostLock(path)
    if not os.path.exists(path):
        return {}, False
    try:
        fd, content = lock._open_locked(None)
    except LockBusy as busy:
        return busy.holder, True
    except OSError:
        return {}, False
    os.close(fd)
    return _parse_holder(content), False
