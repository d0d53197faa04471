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
import shlex
import socket
import time
from typing import Optional

# Extra vars that look like secrets are left out of a command shown back to the operator (it reaches the lock, the
# audit log, refusals and so notifications): by name, and by value (a password inside a URL).
SECRET_NAME_RE = re.compile(r"(?i)pass|secret|token|key|credential|auth")
URL_PASSWORD_RE = re.compile(r"://[^/\s:@]*:[^/\s@]*@")
EXTRA_VARS_LONG = "--extra-vars"
# ansible-playbook's short options that take a value: in a cluster (-vvvek=v) the first of them takes the rest.
SHORT_OPTIONS_WITH_A_VALUE = set("eilufctTM")


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


def _shown_extra_vars(value: str) -> Optional[str]:
    """What of one ``-e`` value may be shown: pairs without a secret; None when nothing of it may."""
    if value.startswith("@"):
        return value  # a file's name, not its content
    if value.lstrip().startswith(("{", "[")):  # JSON or YAML: shown only when nothing in it looks secret
        return None if SECRET_NAME_RE.search(value) or URL_PASSWORD_RE.search(value) else value
    try:
        pairs = shlex.split(value)
    except ValueError:
        return None
    kept = [pair for pair in pairs if not (SECRET_NAME_RE.search(pair.split("=", 1)[0]) or URL_PASSWORD_RE.search(pair)
                                           or pair.startswith("tenant_break_lock="))]  # fmt: skip
    return " ".join(kept) if kept else None


def _quoted(part: str) -> str:
    return part if " " not in part else f"'{part}'"


def _extra_vars_option(part: str) -> Optional[tuple]:
    """(the option as written, its value, or None when the value is the next argument) when ``part`` sets extra vars
    in any spelling argparse accepts - ``--extra-vars``, an unambiguous prefix (``--extra``), with ``=``, ``-e``,
    ``-ek=v``, a cluster ending in e (``-ve``, ``-vvvek=v``); None otherwise."""
    if part.startswith("--"):
        name, equals, value = part.partition("=")
        if len(name) >= len("--ex") and EXTRA_VARS_LONG.startswith(name):
            return name + equals, value if equals else None
        return None
    if part.startswith("-") and len(part) > 1:
        flags = part[1:]
        for index, flag in enumerate(flags):
            if flag in SHORT_OPTIONS_WITH_A_VALUE:
                if flag != "e":
                    return None  # another option takes the rest as its value
                return "-" + flags[: index + 1], flags[index + 1 :] or None
    return None


def safe_command(parts: list) -> str:
    """The command line to show, without extra vars that look like secrets (in any spelling of the option, several
    pairs in one value, JSON), passwords inside URLs, and a lock break."""
    shown, index = [], 0
    while index < len(parts):
        part = parts[index]
        index += 1
        option = _extra_vars_option(part)
        if option is None:
            shown.append(_quoted(URL_PASSWORD_RE.sub("://***@", part)))
            continue
        written, value = option
        if value is None:  # the value is the next argument
            if index >= len(parts):
                continue
            value, index = parts[index], index + 1
            kept = _shown_extra_vars(value)
            shown += [written, _quoted(kept)] if kept is not None else []
        else:
            kept = _shown_extra_vars(value)
            shown += [_quoted(written + kept)] if kept is not None else []
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
