# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write several files together or not at all, under an exclusive lock."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from typing import Iterator, Optional

from ansible_collections.pinned.release.plugins.module_utils._fs import lock_exclusively, replace_with, write_temp

DEFAULT_MODE = 0o644


class FileChangeError(OSError):
    """A file could not be read, locked or written; nothing was left half-done."""


@contextlib.contextmanager
def exclusive_lock(path: str, timeout: float = 30.0) -> Iterator[None]:
    """Hold ``path`` (a lock file next to what it guards) exclusively, waiting up to ``timeout``."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise FileChangeError(f"cannot create lock file {path}: {exc.strerror}") from exc
    try:
        if not lock_exclusively(handle.fileno(), time.monotonic() + timeout):
            raise FileChangeError(
                f"{path} is locked by another run (a concurrent promotion?) for over {timeout:g} s: wait for it to finish"
            )
        yield
    finally:
        handle.close()


def read_text(path: str, what: str = "file") -> Optional[str]:
    """Content of ``path``, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise FileChangeError(f"{what} {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise FileChangeError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _write_temp(path: str, content: str) -> str:
    """A temporary file with ``content`` beside ``path``, with the mode ``path`` has (a new file: DEFAULT_MODE)."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = DEFAULT_MODE
    return write_temp(path, content, mode)


def backup_path(path: str, stamp: str) -> str:
    return f"{path}.{stamp}~"


def write_together(changes: dict, backup_stamp: Optional[str] = None) -> list:
    """Atomically replace each file in ``{path: new_content}``; all or none.

    Each file is written to a temporary file in its own directory, then the
    temporaries are renamed over the originals. If a rename fails, the files
    already replaced get their old content back. Returns backup paths made.
    """
    originals = {path: read_text(path) for path in changes}
    temps: dict = {}
    backups: list = []
    try:
        for path, content in changes.items():
            temps[path] = _write_temp(path, content)
        if backup_stamp:
            for path, old in originals.items():
                if old is not None:
                    target = backup_path(path, backup_stamp)
                    shutil.copy2(path, target)
                    backups.append(target)
    except OSError as exc:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
        for made in backups:
            with contextlib.suppress(OSError):
                os.unlink(made)
        raise FileChangeError(f"cannot write {exc.filename or 'a file'}: {exc.strerror}; nothing was changed") from exc

    replaced: list = []
    try:
        for path, temp in temps.items():
            replace_with(temp, path)
            replaced.append(path)
    except OSError as exc:
        for path in replaced:
            old = originals[path]
            with contextlib.suppress(OSError):
                if old is None:
                    os.unlink(path)
                else:
                    replace_with(_write_temp(path, old), path)
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise FileChangeError(
            f"cannot replace {exc.filename or 'a file'}: {exc.strerror}; the others were restored"
        ) from exc
    return backups
