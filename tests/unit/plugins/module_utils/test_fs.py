# SPDX-License-Identifier: GPL-3.0-or-later
"""Files are replaced whole or not at all, with the mode they are to have; a file lock waits, then says no."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.pinned.release.plugins.module_utils._files import (
    FileChangeError,
    exclusive_lock,
    write_together,
)
from ansible_collections.pinned.release.plugins.module_utils._fs import lock_exclusively, write_atomic


def test_write_atomic_replaces_whole_files_with_their_mode(tmp_path):
    path = tmp_path / "sub" / "f.json"
    write_atomic(str(path), "one", 0o600)
    write_atomic(str(path), "two", 0o600)
    assert path.read_text() == "two"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["f.json"], "no temporary file left behind"


def test_a_stream_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(b"old")

    def half_then_fail(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(str(path), half_then_fail, 0o600)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["archive.tar.gz"]


def test_a_failed_rename_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "state.json"

    def refused(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(PermissionError):
        write_atomic(str(path), "new", 0o600)
    assert list(tmp_path.iterdir()) == []


def test_written_together_files_keep_their_mode_and_new_ones_get_0644(tmp_path):
    kept, new = tmp_path / "script.sh", tmp_path / "pin.yml"
    kept.write_text("old")
    kept.chmod(0o750)
    write_together({str(kept): "new", str(new): "pin"})
    assert (kept.read_text(), new.read_text()) == ("new", "pin")
    assert (oct(kept.stat().st_mode & 0o777), oct(new.stat().st_mode & 0o777)) == ("0o750", "0o644")


def test_a_lock_held_elsewhere_is_waited_for_then_refused(tmp_path):
    path = str(tmp_path / "lock")
    held = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    other = os.open(path, os.O_RDWR)  # another open file description: flock sees another holder
    try:
        assert lock_exclusively(held, None)
        start = time.monotonic()
        assert not lock_exclusively(other, time.monotonic() + 0.3)
        assert time.monotonic() - start >= 0.3
        with pytest.raises(FileChangeError, match="is locked by another run"), exclusive_lock(path, timeout=0.2):
            pass
        os.close(held)
        assert lock_exclusively(other, None), "the lock is free once its holder lets go"
    finally:
        os.close(other)
