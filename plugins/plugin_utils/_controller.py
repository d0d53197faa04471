# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who is running this release on the controller: host, process, run id; and whether an earlier one is gone.

A playbook run is the ``ansible-playbook`` (or ``ansible``) process; plugins run in worker processes it
forks, so it is the worker's parent. Its start time (from /proc) tells a live process from a later one
that reuses the same pid.
"""

from __future__ import annotations

import os
import re
import socket
import time
from typing import Optional

# Extra vars that look like secrets are left out of a command shown back to the operator.
SECRET_NAME_RE = re.compile(r"(?i)pass|secret|token|key|credential")


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_start_ticks(pid: int) -> Optional[int]:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _boot_time() -> float:
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            parts = handle.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return ""
    parts = [p for p in parts if p]
    # python .../ansible-playbook args -> ansible-playbook args
    while parts and os.path.basename(parts[0]).startswith("python"):
        parts = parts[1:]
    if parts:
        parts[0] = os.path.basename(parts[0])
    return safe_command(parts)


def safe_command(parts: list) -> str:
    """The command line to show, without extra vars that look like secrets and without a lock break."""
    shown, skip_next = [], False
    for index, part in enumerate(parts):
        if skip_next:
            skip_next = False
            continue
        if part in ("-e", "--extra-vars") and index + 1 < len(parts):
            value = parts[index + 1]
            skip_next = True
            if SECRET_NAME_RE.search(value.split("=", 1)[0]) or value.startswith("tenant_break_lock="):
                continue
            shown += [part, value if " " not in value else f"'{value}'"]
            continue
        shown.append(part if " " not in part else f"'{part}'")
    return " ".join(shown)


def controller_identity(pid: Optional[int] = None) -> dict:
    """host, pid, start ticks, boot id, command and a run id shared by every host of this playbook run."""
    pid = os.getppid() if pid is None else pid
    ticks = process_start_ticks(pid)
    started = _boot_time() + (ticks or 0) / os.sysconf("SC_CLK_TCK") if ticks is not None else time.time()
    host = socket.gethostname()
    return {
        "host": host,
        "pid": pid,
        "start_ticks": ticks,
        "boot_id": _boot_id(),
        "command": _command(pid),
        "run_id": f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}-{host.split('.')[0]}-{pid}",
    }


def controller_run_gone(holder_controller: dict, me: dict) -> bool:
    """Whether the run in ``holder_controller`` was started on this controller and that process is gone."""
    if not holder_controller or holder_controller.get("host") != me.get("host"):
        return False
    if holder_controller.get("boot_id") and holder_controller.get("boot_id") != me.get("boot_id"):
        return True  # this controller rebooted since
    pid = holder_controller.get("pid")
    if not isinstance(pid, int) or pid == me.get("pid"):
        return False
    ticks = process_start_ticks(pid)
    return ticks is None or ticks != holder_controller.get("start_ticks")


def operator() -> str:
    """PINNED_OPERATOR, else USER, else the login name, else 'unknown'."""
    for name in ("PINNED_OPERATOR", "USER"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "unknown"
