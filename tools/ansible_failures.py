# SPDX-License-Identifier: GPL-3.0-or-later
"""Print the failures an Ansible log file (ANSIBLE_LOG_PATH) records, one line each.

``make molecule`` calls it when a scenario fails: molecule ends with its recap, so the
failing task's message would otherwise be far above the last lines a CI log shows.
Ignored failures are left out; with several failures, the last ones are shown (the
playbook stops at the last one, which is usually the cause).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ p=\d+ u=\S+ n=\S+ (?:[A-Z]+)?\| ", re.MULTILINE)
TASK = re.compile(r"^TASK \[(?P<name>.*)\] \**$")
FATAL = re.compile(r"^fatal: \[(?P<host>[^\]]+)\]: (?P<kind>FAILED|UNREACHABLE)! =>(?P<body>.*)", re.DOTALL)
MESSAGE_LIMIT = 400


@dataclass(frozen=True)
class Failure:
    task: str
    host: str
    kind: str
    message: str

    def line(self) -> str:
        return f"{self.host}: {self.kind} in TASK [{self.task}]: {self.message}"


def _records(text: str) -> list[str]:
    matches = list(RECORD.finditer(text))
    ends = [following.start() for following in matches[1:]]
    ends.append(len(text))
    return [text[match.end() : end].strip() for match, end in zip(matches, ends)]


def _message(body: str) -> str:
    """The result's msg (or its failed loop items' msgs, or stderr), on one line."""
    try:
        result = yaml.safe_load(body)
    except yaml.YAMLError:
        result = None
    if not isinstance(result, dict):
        return " ".join(body.split())
    messages = [result.get("msg") or result.get("stderr") or ""]
    for item in result.get("results") or []:
        if isinstance(item, dict) and item.get("failed"):
            messages.append(str(item.get("msg") or item.get("stderr") or ""))
    text = " ".join(" ".join(str(message).split()) for message in messages if message)
    return text or " ".join(body.split())


def failures(text: str) -> list[Failure]:
    found: list[Failure] = []
    task = "?"
    records = _records(text)
    for index, record in enumerate(records):
        heading = TASK.match(record)
        if heading:
            task = heading["name"]
            continue
        fatal = FATAL.match(record)
        if not fatal:
            continue
        following = records[index + 1] if index + 1 < len(records) else ""
        if following.startswith("...ignoring"):
            continue
        message = _message(fatal["body"])
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 3] + "..."
        found.append(Failure(task, fatal["host"], fatal["kind"], message))
    return found


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(f"usage: {argv[0]} ANSIBLE_LOG [LAST_N]", file=sys.stderr)
        return 2
    log = Path(argv[1])
    if not log.is_file():
        print(f"{log}: no Ansible log (was ANSIBLE_LOG_PATH set for the run?)")
        return 0
    last = int(argv[2]) if len(argv) == 3 else 3
    found = failures(log.read_text(errors="replace"))
    if not found:
        print(f"{log}: no failed task recorded (the failure is in molecule's own output above)")
    for failure in found[-last:]:
        print(failure.line())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
