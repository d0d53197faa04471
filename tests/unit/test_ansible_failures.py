# SPDX-License-Identifier: GPL-3.0-or-later
"""tools/ansible_failures.py: the failures make molecule prints last when a scenario fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.lab import ROOT
from tools.ansible_failures import failures

STAMP = "2026-11-24 23:28:13,891 p=25666 u=root n=ansible INFO| "
ERROR_STAMP = "2026-11-24 23:28:13,885 p=25666 u=root n=ansible ERROR| "


def log(*records: str) -> str:
    return "".join(record if record.startswith("2026") else STAMP + record + "\n" for record in records)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(log("TASK [a] ***", "ok: [test1]"), [], id="no-failure"),
        pytest.param(
            log(
                "TASK [pinned.release.tenant : Pull] ***",
                "fatal: [prod1]: FAILED! => \n    changed: false\n    msg: boom",
            ),
            ["prod1: FAILED in TASK [pinned.release.tenant : Pull]: boom"],
            id="one-failure",
        ),
        pytest.param(
            log("TASK [a] ***", "fatal: [test1]: FAILED! => \n    msg: ignored", "...ignoring"),
            [],
            id="ignored-failure-left-out",
        ),
        pytest.param(
            log("TASK [wait] ***", "fatal: [prod2]: UNREACHABLE! => \n    changed: false\n    msg: ssh timed out"),
            ["prod2: UNREACHABLE in TASK [wait]: ssh timed out"],
            id="unreachable",
        ),
        pytest.param(
            log("TASK [a] ***", "fatal: [test1]: FAILED! => \n    msg: |-\n        first line\n        second line"),
            ["test1: FAILED in TASK [a]: first line second line"],
            id="multi-line-message-joined",
        ),
        pytest.param(
            log(
                "TASK [loop] ***",
                "fatal: [test1]: FAILED! => \n    msg: One or more items failed\n    results:\n"
                "    - failed: true\n      msg: item b broke\n    - failed: false\n      msg: fine",
            ),
            ["test1: FAILED in TASK [loop]: One or more items failed item b broke"],
            id="loop-items",
        ),
        pytest.param(
            log("TASK [cmd] ***", "fatal: [test1]: FAILED! => \n    rc: 1\n    stderr: no such file"),
            ["test1: FAILED in TASK [cmd]: no such file"],
            id="stderr-when-no-msg",
        ),
        pytest.param(
            ERROR_STAMP
            + "[ERROR]: Task failed\nOrigin: x.yml:4:7\n\n"
            + log("TASK [a] ***", "fatal: [test1]: FAILED! => \n    msg: after an error record"),
            ["test1: FAILED in TASK [a]: after an error record"],
            id="error-records-between",
        ),
        pytest.param(
            log("TASK [x] ***", "fatal: [test1]: FAILED! => not yaml: [unclosed"),
            ["test1: FAILED in TASK [x]: not yaml: [unclosed"],
            id="unparsable-body-kept-raw",
        ),
    ],
)
def test_failures(text, expected):
    assert [failure.line() for failure in failures(text)] == expected


def test_long_messages_are_cut():
    (failure,) = failures(log("TASK [a] ***", "fatal: [h]: FAILED! => \n    msg: " + "x" * 1000))
    assert len(failure.message) == 400
    assert failure.message.endswith("...")


def test_the_last_failures_are_printed_from_a_real_ansible_log(tmp_path):
    playbook = tmp_path / "fails.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Ignored\n      ansible.builtin.fail: {msg: not this one}\n      ignore_errors: true\n"
        "    - name: The cause\n      ansible.builtin.fail: {msg: this one}\n"
    )
    ansible_log = tmp_path / "ansible.log"
    ansible_playbook = Path(sys.executable).parent / "ansible-playbook"
    run = subprocess.run(
        [str(ansible_playbook), str(playbook)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_LOG_PATH": str(ansible_log), "ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml"},
    )
    assert run.returncode == 2, run.stdout + run.stderr
    printed = subprocess.run(
        [sys.executable, str(ROOT / "tools/ansible_failures.py"), str(ansible_log)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == "localhost: FAILED in TASK [The cause]: this one\n"
