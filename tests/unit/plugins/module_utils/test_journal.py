# SPDX-License-Identifier: GPL-3.0-or-later
"""The host lock and the audit log: atomic files and a lock that tells live from dead."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.pinned.release.plugins.module_utils._journal import (
    HostLock,
    JournalError,
    LockBusy,
    append_line,
    lock_age_seconds,
    peek_lock,
    read_json,
)

ME = {"run_id": "run-me", "operator": "tester"}
# Holds the lock in another process until killed, like a transaction that is still running.
HOLDER = """
import sys, time
sys.path.insert(0, sys.argv[2])
from ansible_collections.pinned.release.plugins.module_utils._journal import HostLock
lock = HostLock(sys.argv[1])
lock.acquire({"run_id": "run-other", "operator": "someone", "started_epoch": time.time()})
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def other_holder(tmp_path):
    """Another live process holding the lock (returns its Popen)."""
    collections = str(Path(__file__).resolve().parents[4] / ".collections")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "deploy.lock"), collections],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_read_json_names_a_corrupt_file(tmp_path):
    path = tmp_path / "j.json"
    path.write_text("{half")
    with pytest.raises(JournalError, match=f"journal {path} is not valid JSON"):
        read_json(str(path), "journal")
    assert read_json(str(tmp_path / "absent.json"), "journal") is None


def test_a_free_lock_is_taken_and_released(tmp_path):
    lock = HostLock(str(tmp_path / "deploy.lock"))
    assert lock.acquire(ME) == {}
    assert json.loads((tmp_path / "deploy.lock").read_text())["run_id"] == "run-me"
    assert peek_lock(str(tmp_path / "deploy.lock")) == ({"run_id": "run-me", "operator": "tester"}, True)
    lock.release()
    assert not (tmp_path / "deploy.lock").exists()
    assert peek_lock(str(tmp_path / "deploy.lock")) == ({}, False)


def test_a_live_holder_is_never_taken_over(tmp_path, other_holder):
    with pytest.raises(LockBusy) as busy:
        HostLock(str(tmp_path / "deploy.lock")).acquire(ME, may_take_over=lambda dead: True)
    assert busy.value.live is True
    assert busy.value.holder["run_id"] == "run-other"


def test_waiting_for_a_named_live_run_takes_the_lock_once_it_ends(tmp_path, other_holder):
    start = time.monotonic()
    lock = HostLock(str(tmp_path / "deploy.lock"))
    with pytest.raises(LockBusy):
        lock.acquire(ME, wait_for_run="run-other", wait_seconds=0.5)
    assert time.monotonic() - start >= 0.5
    other_holder.kill()  # it dies mid-transaction: its content stays behind
    other_holder.wait()
    dead = lock.acquire(ME, may_take_over=lambda holder: holder["run_id"] == "run-other", wait_for_run="run-other",
                        wait_seconds=5)  # fmt: skip
    assert dead["run_id"] == "run-other"
    assert json.loads((tmp_path / "deploy.lock").read_text())["run_id"] == "run-me"


def test_a_dead_holder_is_taken_over_only_when_allowed(tmp_path, other_holder):
    other_holder.kill()
    other_holder.wait()
    lock = HostLock(str(tmp_path / "deploy.lock"))
    with pytest.raises(LockBusy) as busy:
        lock.acquire(ME)
    assert busy.value.live is False
    assert busy.value.holder["run_id"] == "run-other"
    assert lock.acquire(ME, may_take_over=lambda holder: True)["run_id"] == "run-other"


def test_an_empty_or_corrupt_lock_file(tmp_path):
    path = tmp_path / "deploy.lock"
    path.write_text("")
    assert HostLock(str(path)).acquire(ME) == {}, "an empty file is a free lock"
    path.write_text("{half")
    with pytest.raises(LockBusy) as busy:
        HostLock(str(path)).acquire({"run_id": "x"})
    assert busy.value.holder == {"run_id": "unknown", "corrupt": True}


def test_lock_age():
    assert lock_age_seconds({"started_epoch": 100.0}, 160.0) == 60.0
    assert lock_age_seconds({}, 160.0) is None


class Killed(BaseException):
    pass


def test_a_kill_while_the_holder_is_written_leaves_the_old_holder_never_an_empty_free_lock(tmp_path, monkeypatch):
    path = tmp_path / "deploy.lock"
    path.write_text(json.dumps({"run_id": "run-dead-with-a-long-name", "operator": "someone"}))
    taken_over = []

    def killed(*_args):
        raise Killed()

    lock = HostLock(str(path))
    monkeypatch.setattr(os, "write", killed)
    monkeypatch.setattr(os, "pwrite", killed)
    with pytest.raises(Killed):
        lock.acquire(ME, may_take_over=lambda dead: True, on_take_over=taken_over.append)
    monkeypatch.undo()
    os.close(lock._fd) if lock._fd is not None else None
    assert json.loads(path.read_text())["run_id"] == "run-dead-with-a-long-name", "the dead run is still named"
    assert [d["run_id"] for d in taken_over] == ["run-dead-with-a-long-name"], "the takeover was told before"
    assert HostLock(str(path)).acquire(ME, may_take_over=lambda dead: True)["run_id"] == "run-dead-with-a-long-name"
    assert json.loads(path.read_text()) == ME, "a shorter holder over a longer one still reads whole"


def test_a_look_that_holds_the_lock_for_an_instant_does_not_refuse_a_deploy(tmp_path):
    path = tmp_path / "deploy.lock"
    path.write_text("")
    looking = threading.Event()

    def look() -> None:  # what peek_lock (check mode, the fleet page) does: flock, read, let go
        with open(path) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            looking.set()
            time.sleep(0.5)

    thread = threading.Thread(target=look)
    thread.start()
    looking.wait()
    assert HostLock(str(path)).acquire(ME) == {}
    thread.join()


def test_audit_lines_are_appended_whole(tmp_path):
    log = tmp_path / "log" / "audit.jsonl"
    append_line(str(log), {"tenant": "a", "result": "ok"})
    append_line(str(log), {"tenant": "b", "result": "failed"})
    assert [json.loads(line)["tenant"] for line in log.read_text().splitlines()] == ["a", "b"]
