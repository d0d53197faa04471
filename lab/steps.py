# SPDX-License-Identifier: GPL-3.0-or-later
"""The demos' steps (make demo, make demo-adopt): one line per step with its outcome and time, the full output in a
log; a step that misbehaves stops the demo with its output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOLD, GREEN, RED, DIM, OFF = (
    ("\033[1m", "\033[32m", "\033[31m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("",) * 5
)


class Steps:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.number = 0
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")

    def run(self, title: str, command: list | None = None, expect_failure: bool = False, action=None) -> str:
        """Run one step, print one line with its outcome and time; stop the demo if it misbehaves."""
        self.number += 1
        print(f"{BOLD}[{self.number:2}]{OFF} {title[:72]:<72}", end="", flush=True)
        started = time.monotonic()
        output, ok = "", True
        if command:
            env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                       PINNED_OPERATOR="demo", PINNED_LAB_APP="open-webui")  # fmt: skip
            proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            output = proc.stdout + proc.stderr
            with self.log.open("a") as log:
                log.write(f"\n===== [{self.number}] {title}\n$ {' '.join(command)}\n{output}")
            ok = (proc.returncode != 0) if expect_failure else (proc.returncode == 0)
            if "Could not match supplied host pattern" in output or "provided hosts list is empty" in output:
                ok, output = False, output + "\nthe playbook reached no host: is the inventory's hosts.ini intact?"
        if action:
            try:
                output = action() or ""
            except AssertionError as exc:
                ok, output = False, str(exc)
            except OSError as exc:  # the app did not answer: a failed step, not a traceback
                ok, output = False, f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - started
        verdict = ("failed, as expected" if expect_failure else "ok") if ok else "UNEXPECTED"
        print(f"{GREEN if ok else RED}{verdict:>20}{OFF} {DIM}{elapsed:5.1f}s{OFF}")
        if not ok:
            print(output[-3000:])
            print(f"{RED}demo stopped: see {self.log}{OFF}")
            sys.exit(1)
        return output


def playbook(name: str, *args: str) -> list:
    return [str(ROOT / ".venv/bin/ansible-playbook"), f"playbooks/{name}", *args]


def lab(*args: str) -> list:
    return [str(ROOT / "lab/lab.sh"), *args]


def say(text: str) -> None:
    print(f"       {DIM}{text[:150]}{OFF}")


def lines_with(output: str, marker: str) -> list:
    """The list items (``- ...``, folded over deeper-indented lines) of ansible-playbook's yaml output that hold
    ``marker``; an item ends where the indentation does, so a next task's header is never part of it."""
    items, current, indent = [], None, 0
    for line in output.splitlines():
        stripped = line.lstrip()
        depth = len(line) - len(stripped)
        if current is not None and stripped and depth > indent:
            current.append(stripped)
            continue
        if current is not None:
            items.append(" ".join(current))
            current = None
        if stripped.startswith("- "):
            current, indent = [stripped[2:]], depth
    if current is not None:
        items.append(" ".join(current))
    return [_unquote(item) for item in items if marker in item]


def _unquote(item: str) -> str:
    if len(item) > 1 and item[0] == item[-1] == "'":
        return item[1:-1].replace("''", "'")
    return item.strip('"')
