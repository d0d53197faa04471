# SPDX-License-Identifier: GPL-3.0-or-later
"""No module calls the Docker SDK itself: every Docker call goes through the engine (_engine.DockerEngine), which
takes its errors one way and which unit tests replace with a fake. A module gets a client only from connect(), and
hands it straight to DockerEngine."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import docker
import pytest
import requests

from ansible_collections.pinned.release.plugins.module_utils._engine import DockerEngine

ROOT = Path(__file__).resolve().parents[4]
MODULES = sorted((ROOT / "plugins/modules").glob("*.py"))
# The SDK client's own verbs (requests.Session's, the engine's and everyday names like get/index left out).
EVERYDAY = set().union(*(dir(kind) for kind in (str, bytes, dict, list, set, re.Pattern, re.Match, requests.Session)))
SDK_VERBS = {n for n in dir(docker.APIClient) if not n.startswith("_")} - set(dir(DockerEngine)) - EVERYDAY
# Calls that share an SDK verb's name and are not Docker's: a signal to the module's own process, the readiness wait.
NOT_DOCKER = {("os", "kill"), ("readiness", "wait")}


def receiver(call: ast.Call) -> str:
    value = call.func.value
    return value.id if isinstance(value, ast.Name) else ast.unparse(value)


def sdk_uses(path: Path) -> list:
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in ("docker", "requests") for a in node.names):
            found.append(f"line {node.lineno}: imports {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("docker", "requests"):
            found.append(f"line {node.lineno}: imports from {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "connect":
            outer = parents.get(node)
            if not (
                isinstance(outer, ast.Call) and isinstance(outer.func, ast.Name) and outer.func.id == "DockerEngine"
            ):
                found.append(f"line {node.lineno}: a client from connect() that is not handed to DockerEngine")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SDK_VERBS
            and (receiver(node), node.func.attr) not in NOT_DOCKER
        ):
            found.append(f"line {node.lineno}: {receiver(node)}.{node.func.attr}() is a Docker SDK call")
    return found


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_modules_reach_docker_only_through_the_engine(path):
    assert sdk_uses(path) == [], f"{path.name}: use the engine (plugins/module_utils/_engine.py)"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("client = connect(params)\nclient.inspect_container('x')\n", 2),
        ("import docker\n", 1),
        ("from docker.errors import NotFound\n", 1),
        ("engine = DockerEngine(connect(params))\nengine.inspect('x')\nos.kill(1, 9)\n", 0),
    ],
)
def test_the_check_finds_what_it_is_for(tmp_path, source, found):
    module = tmp_path / "module.py"
    module.write_text(source)
    assert len(sdk_uses(module)) == found, sdk_uses(module)
