# SPDX-License-Identifier: GPL-3.0-or-later
"""The layers of make test, timed: ``run NAME -- COMMAND...`` runs one and records its time (and its exit code, which it
returns); ``summary`` prints each layer's time and the 20 slowest tests of every layer's JUnit report
(``.build/junit-*.xml``), so a slow suite says where its minutes went."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

BUILD = Path(__file__).resolve().parents[1] / ".build"
TIMES = BUILD / "layer-times.tsv"


def run(name: str, command: list) -> int:
    BUILD.mkdir(exist_ok=True)
    begin = time.monotonic()
    status = subprocess.run(command, check=False).returncode
    with TIMES.open("a") as times:
        times.write(f"{name}\t{time.monotonic() - begin:.0f}\t{status}\n")
    return status


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def summary() -> int:
    rows = [line.split("\t") for line in TIMES.read_text().splitlines()] if TIMES.exists() else []
    print("\n== make test, layer by layer")
    for name, seconds, status in rows:
        print(f"  {name:<32} {minutes(float(seconds)):>14}{'' if status == '0' else '  FAILED'}")
    print(f"  {'total':<32} {minutes(sum(float(s) for _n, s, _st in rows)):>14}")
    cases = []
    for report in sorted(BUILD.glob("junit-*.xml")):
        layer = report.stem.removeprefix("junit-")
        for case in ET.parse(report).iter("testcase"):  # noqa: S314 - our own pytest's report
            cases.append((float(case.get("time") or 0), layer, f"{case.get('classname')}::{case.get('name')}"))
    if cases:
        print("\n== the 20 slowest tests")
        for seconds, layer, name in sorted(cases, reverse=True)[:20]:
            print(f"  {seconds:7.1f} s  {layer:<12} {name}")
    return 0


def main(argv: list) -> int:
    if argv[:1] == ["summary"]:
        return summary()
    if len(argv) >= 4 and argv[0] == "run" and argv[2] == "--":
        return run(argv[1], argv[3:])
    print("usage: tools/test_layers.py run NAME -- COMMAND... | summary", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
