# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's main() in this process, as Ansible would on a host, and return what it told Ansible."""

from __future__ import annotations

import contextlib
import importlib
import io
import json

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


def run_module(name: str, args: dict, monkeypatch=None, engine=None) -> tuple:
    """(the module's JSON answer, everything it printed). ``engine``: the engine its Docker calls reach (a fake)."""
    module = importlib.import_module(f"ansible_collections.pinned.release.plugins.modules.{name}")
    if engine is not None and hasattr(module, "DockerEngine"):
        monkeypatch.setattr(module, "connect", lambda params: None)
        monkeypatch.setattr(module, "DockerEngine", lambda client: engine)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    printed, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors), contextlib.suppress(SystemExit):
        module.main()
    output = printed.getvalue()
    return json.loads(output), output + errors.getvalue()
