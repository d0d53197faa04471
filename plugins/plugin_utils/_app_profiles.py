# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""App profiles: what the collection knows about the app it releases, one YAML file per app.

A profile is chosen by name (``profiles/<name>.yml`` of the collection: ``open-webui``, ``generic-http``) or by the
absolute path of a file of the same shape (an app of one's own). It holds:

- ``runtime``: how a tenant's container runs and when it is ready (what the ``tenant`` role's ``_tenant_app`` holds
  once ``release_app``'s overrides are merged over it);
- ``checklist_before`` and ``checklist``: the testing checklist run before and after the candidate (the
  ``run_checklist`` format);
- ``adoption``: how adoption finds a hand-started container's secret key (its environment variable, or the file in
  the container the app writes it to). Adoption's data path, port and container prefix are the runtime's.

A profile is literal data: nothing in it is templated (a ``{{`` is refused), so what it says is what runs.
Every problem is one line naming the file and the key, read before anything is deployed.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ansible_collections.pinned.release.plugins.module_utils._checks import check_problems
from ansible_collections.pinned.release.plugins.module_utils._tenants import APP_REQUIRED, app_problems

PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"
DEFAULT_PROFILE = "open-webui"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
JINJA_RE = re.compile(r"\{\{|\{%|\{#")
HOW_TO = "see docs/app-profiles.md"
# A profile is a page of settings and two checklists: a few hundred values, far fewer than this bound.
MAX_VALUES = 20000

TEXT, NUMBER, TEXT_LIST, TEXT_MAP, MAPPING, OPTIONAL_TEXT = (
    "text", "a whole number", "a list of text", "a mapping of names to text", "a mapping", "text or empty",
)  # fmt: skip
SECTIONS = {
    "description": TEXT,
    "runtime": MAPPING,
    "checklist_before": "a list of checks",
    "checklist": "a list of checks",
    "adoption": MAPPING,
}
RUNTIME = {
    "container_prefix": TEXT,
    "container_port": NUMBER,
    "data_path": TEXT,
    "data_root": TEXT,
    "bind_address": TEXT,
    "restart_policy": TEXT,
    "memory": TEXT,
    "stop_timeout": NUMBER,
    "start_timeout": NUMBER,
    "scheme": TEXT,
    "url_env": TEXT_LIST,
    "url_path_env": TEXT_MAP,
    "env": TEXT_MAP,
    "required_secrets": TEXT_LIST,
    "health_path": TEXT,
    "health_json": MAPPING,
    "version_path": OPTIONAL_TEXT,
    "version_key": OPTIONAL_TEXT,
    "version_label": OPTIONAL_TEXT,
    "snapshot_exclude": TEXT_LIST,
    "websocket_path": OPTIONAL_TEXT,
    "client_max_body_size": TEXT,
    "proxy_read_timeout": TEXT,
}
REQUIRED_RUNTIME = (*APP_REQUIRED, "start_timeout", "health_path")
ADOPTION = {"secret_key_env": OPTIONAL_TEXT, "secret_key_file": OPTIONAL_TEXT}
# What adoption takes from the runtime (one home for each fact).
ADOPTION_FROM_RUNTIME = ("data_path", "container_port", "container_prefix")


class AppProfileError(ValueError):
    """A profile that cannot be used: one line naming the file (or the name) and the key at fault."""


@dataclass(frozen=True)
class AppProfile:
    name: str
    path: str
    description: str
    runtime: dict
    checklist_before: list
    checklist: list
    adoption: dict

    def resolved(self, overrides: object = None) -> dict:
        """The profile as the roles read it: ``overrides`` (``release_app``) merged over the runtime, and adoption's
        data path, port and prefix taken from that runtime."""
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            raise AppProfileError(
                f"release_app must be a mapping of the app profile's runtime settings to override, "
                f"got {type(overrides).__name__}"
            )
        unknown = sorted(str(key) for key in overrides if key not in RUNTIME)
        if unknown:  # a misspelt setting would be ignored, silently: memroy: 512m and no memory limit
            raise AppProfileError(
                f"release_app sets {', '.join(unknown)}, which no app profile knows: use one of "
                f"{', '.join(sorted(RUNTIME))} ({HOW_TO})"
            )
        runtime = merged(self.runtime, overrides)
        return {
            "name": self.name,
            "path": self.path,
            "description": self.description,
            "runtime": runtime,
            "checklist_before": copy.deepcopy(self.checklist_before),
            "checklist": copy.deepcopy(self.checklist),
            "adoption": {**self.adoption, **{key: runtime.get(key) for key in ADOPTION_FROM_RUNTIME}},
        }


def merged(base: dict, overrides: dict) -> dict:
    """``overrides`` over ``base``, mappings merged key by key (as Ansible's ``combine(recursive=True)``)."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def available() -> list:
    """The names of the collection's own profiles."""
    return sorted(path.stem for path in PROFILES_DIR.glob("*.yml"))


def profile_file(reference: object) -> Path:
    """The file a profile name or path names; an error says what to set instead."""
    if not isinstance(reference, str) or not reference.strip():
        raise AppProfileError(
            f"release_app_profile must be a profile name ({', '.join(available())}) or the absolute path of a profile "
            f"file, got {reference!r}"
        )
    if NAME_RE.fullmatch(reference):
        path = PROFILES_DIR / f"{reference}.yml"
        if not path.is_file():
            raise AppProfileError(
                f"app profile {reference!r} is not one of the collection's ({', '.join(available())}): set "
                f"release_app_profile to one of them, or to the path of your own profile file ({HOW_TO})"
            )
        return path
    path = Path(reference)
    if not path.is_absolute():
        raise AppProfileError(
            f"app profile file {reference!r} must be an absolute path, e.g. "
            f'"{{{{ inventory_dir }}}}/profiles/myapp.yml" (a name is letters, digits, - and _ only)'
        )
    if path.is_dir():
        raise AppProfileError(f"app profile file {reference} is a folder: name the profile's .yml file in it")
    if not path.is_file():
        raise AppProfileError(f"app profile file {reference} does not exist: write it ({HOW_TO}) or fix the path")
    return path


def load(reference: object) -> AppProfile:
    """The profile a name or path names, read and checked (a file is read again only once it changed)."""
    path = profile_file(reference)
    try:
        stat = path.stat()
    except OSError as exc:
        raise AppProfileError(f"app profile file {path} cannot be read: {exc.strerror}") from None
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _read(path: str, _mtime_ns: int, _size: int) -> AppProfile:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise AppProfileError(f"app profile file {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AppProfileError(f"app profile file {path} is not UTF-8 text: fix the file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise AppProfileError(f"app profile file {path} is not valid YAML{where}: fix the file") from None
    shape = _shape_problem(data)
    if shape:
        raise AppProfileError(f"app profile file {path} {shape}: fix the file")
    problems = profile_problems(data, path)
    if problems:
        raise AppProfileError(f"app profile file {path}: {'; '.join(problems)} ({HOW_TO})")
    name = Path(path).stem
    return AppProfile(name=name, path=path, description=data["description"], runtime=data["runtime"],
                      checklist_before=data.get("checklist_before") or [], checklist=data["checklist"],
                      adoption={key: data["adoption"].get(key) or "" for key in ADOPTION})  # fmt: skip


def _shape_problem(data: object) -> str:
    """YAML aliases can make a value hold itself, or expand a small file into billions of values: refused before
    anything walks the profile ('' when it is a plain tree of at most MAX_VALUES values)."""
    seen, stack = 0, [(data, frozenset())]
    while stack:
        value, ancestors = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return f"holds more than {MAX_VALUES} values once its YAML aliases are expanded"
        if isinstance(value, (dict, list)):
            if id(value) in ancestors:
                return "holds a YAML alias inside itself (a value that contains itself)"
            inside = ancestors | {id(value)}
            stack.extend((item, inside) for item in (value.values() if isinstance(value, dict) else value))
    return ""


def profile_problems(data: object, path: str = "profile") -> list:
    """One line per problem with a profile's content (``path`` only names it)."""
    if not isinstance(data, dict):
        return [f"must be a mapping with {', '.join(SECTIONS)}, got {type(data).__name__}"]
    problems = _unknown(data, SECTIONS, "")
    problems += [f"{key} is missing" for key in ("description", "runtime", "checklist", "adoption") if key not in data]
    if "description" in data and (not isinstance(data["description"], str) or not data["description"].strip()):
        problems.append(f"description must be text (what the app is), got {data['description']!r}")
    problems += _jinja(data, "")
    runtime = data.get("runtime")
    if "runtime" in data:
        problems += _section(runtime, "runtime", RUNTIME)
        if isinstance(runtime, dict):
            problems += [f"runtime.{key} is missing" for key in REQUIRED_RUNTIME if runtime.get(key) in (None, "")]
            if not problems:
                # The host's own rules for an app profile (release_app over it is checked again at the preflight).
                problems += [problem.replace("release_app.", "runtime.", 1) for problem in app_problems(runtime)]
    for key in ("checklist_before", "checklist"):
        if key in data:
            checks = data[key] if data[key] is not None or key == "checklist" else []
            problems += check_problems(checks, key, container_checks=True)
            if key == "checklist" and checks == []:
                problems.append("checklist is empty: a test that checks nothing proves nothing")
    if "adoption" in data:
        problems += _section(data["adoption"], "adoption", ADOPTION)
    return problems


def _unknown(data: dict, known: dict, where: str) -> list:
    unknown = sorted(str(key) for key in data if key not in known)
    if not unknown:
        return []
    return [f"{where}{', '.join(unknown)}: unknown key{'s' if len(unknown) > 1 else ''} (known: {', '.join(known)})"]


def _section(section: object, name: str, fields: dict) -> list:
    if not isinstance(section, dict):
        return [f"{name} must be a mapping, got {type(section).__name__}"]
    problems = _unknown(section, fields, f"{name}.")
    for key, kind in fields.items():
        if key in section and not _is(section[key], kind):
            problems.append(f"{name}.{key} must be {kind}, got {section[key]!r}")
    return problems


def _is(value: object, kind: str) -> bool:
    if kind == NUMBER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == TEXT:
        return isinstance(value, str)
    if kind == OPTIONAL_TEXT:
        return value is None or isinstance(value, str)
    if kind == TEXT_LIST:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == TEXT_MAP:
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return isinstance(value, dict)


def _jinja(value: object, where: str) -> list:
    """A profile is literal: Jinja in it would be evaluated, or not, depending on who reads it."""
    if isinstance(value, str):
        if JINJA_RE.search(value):
            return [f"{where or 'a value'} holds Jinja ({{{{ or {{%), which a profile never evaluates: write the "
                    "value itself (a checklist takes ${name} variables from release_checklist_variables)"]  # fmt: skip
        return []
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _jinja(item, f"{where}.{key}" if where else str(key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _jinja(item, f"{where}[{index}]")]
    return []


def resolve(reference: object = DEFAULT_PROFILE, overrides: object = None) -> dict:
    """The lookup's answer: the profile named, with ``overrides`` merged over its runtime."""
    return load(reference).resolved(overrides)
