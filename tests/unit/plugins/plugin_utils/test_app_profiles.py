# SPDX-License-Identifier: GPL-3.0-or-later
"""App profiles: the shipped ones load, overrides merge, and every bad profile is one line naming the file and key."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleLookupError

from ansible_collections.pinned.release.plugins.lookup.app_profile import LookupModule
from ansible_collections.pinned.release.plugins.plugin_utils import _app_profiles
from ansible_collections.pinned.release.plugins.plugin_utils._app_profiles import AppProfileError, resolve

ROOT = Path(__file__).resolve().parents[4]
GENERIC = yaml.safe_load((ROOT / "profiles/generic-http.yml").read_text())


def test_the_collection_ships_open_webui_and_generic_http_and_each_loads():
    assert _app_profiles.available() == ["generic-http", "open-webui"]
    webui = resolve("open-webui")
    assert (webui["runtime"]["container_port"], webui["runtime"]["health_path"]) == (8080, "/health")
    assert webui["adoption"] == {"secret_key_env": "WEBUI_SECRET_KEY", "secret_key_file": "/app/backend/.webui_secret_key",
                                 "data_path": "/app/backend/data", "container_port": 8080,
                                 "container_prefix": "openwebui-"}  # fmt: skip
    assert webui["checklist_before"][0]["name"] == "running before the upgrade"
    generic = resolve("generic-http")
    runtime = generic["runtime"]
    assert (runtime["container_port"], runtime["data_path"], runtime["health_path"]) == (8080, "/data", "/")
    assert (runtime["required_secrets"], runtime["version_path"], runtime["health_json"]) == ([], "", {})
    assert (generic["adoption"]["secret_key_env"], generic["adoption"]["data_path"]) == ("", "/data")


def test_the_default_is_open_webui():
    assert resolve()["name"] == "open-webui"


def test_overrides_merge_over_the_runtime_and_adoption_follows_them():
    profile = resolve("open-webui", {"data_path": "/srv/data", "env": {"WEBUI_NAME": "Acme"}, "health_json": {}})
    assert profile["runtime"]["data_path"] == "/srv/data"
    assert profile["runtime"]["env"] == {"ENABLE_VERSION_UPDATE_CHECK": "false", "WEBUI_NAME": "Acme"}
    assert profile["runtime"]["health_json"] == {"status": True}, "mappings merge key by key, as combine(recursive)"
    assert profile["adoption"]["data_path"] == "/srv/data"
    assert resolve("open-webui")["runtime"]["data_path"] == "/app/backend/data", "the cached profile is not changed"


def test_a_profile_of_ones_own_by_path_and_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "myapp.yml"
    mine = copy.deepcopy(GENERIC)
    mine["runtime"]["container_port"] = 5232
    path.write_text(yaml.safe_dump(mine))
    profile = resolve(str(path))
    assert (profile["name"], profile["path"], profile["runtime"]["container_port"]) == ("myapp", str(path), 5232)
    mine["runtime"]["container_port"] = 5233
    path.write_text(yaml.safe_dump(mine))
    os.utime(path, ns=(1, 1))  # another mtime, whatever the clock's resolution
    assert resolve(str(path))["runtime"]["container_port"] == 5233


def test_no_checks_before_is_an_empty_list(tmp_path):
    path = tmp_path / "quiet.yml"
    path.write_text(yaml.safe_dump({k: v for k, v in GENERIC.items() if k != "checklist_before"}))
    assert resolve(str(path))["checklist_before"] == []


def without(section: str, key: str) -> dict:
    data = copy.deepcopy(GENERIC)
    del data[section][key]
    return data


def changed(section: str | None, key: str, value: object) -> dict:
    data = copy.deepcopy(GENERIC)
    (data[section] if section else data)[key] = value
    return data


BAD_CONTENT = [
    ("not a mapping", ["a", "list"], "must be a mapping with description, runtime"),
    ("unknown section", changed(None, "colour", "blue"), "colour: unknown key (known: description, runtime,"),
    ("no runtime", {k: v for k, v in GENERIC.items() if k != "runtime"}, "runtime is missing"),
    ("no checklist", {k: v for k, v in GENERIC.items() if k != "checklist"}, "checklist is missing"),
    ("no adoption", {k: v for k, v in GENERIC.items() if k != "adoption"}, "adoption is missing"),
    ("no description", {k: v for k, v in GENERIC.items() if k != "description"}, "description is missing"),
    ("description not text", changed(None, "description", ["x"]), "description must be text"),
    ("runtime not a mapping", changed(None, "runtime", "port 8080"), "runtime must be a mapping, got str"),
    ("unknown runtime key", changed("runtime", "ports", [8080]), "runtime.ports: unknown key (known: container_prefix"),
    ("port as text", changed("runtime", "container_port", "8080"), "runtime.container_port must be a whole number, got '8080'"),
    ("port as a boolean", changed("runtime", "container_port", True), "runtime.container_port must be a whole number"),
    ("timeout as a float", changed("runtime", "start_timeout", 1.5), "runtime.start_timeout must be a whole number"),
    ("env value not text", changed("runtime", "env", {"DEBUG": True}), "runtime.env must be a mapping of names to text"),
    ("url_env not a list", changed("runtime", "url_env", "APP_URL"), "runtime.url_env must be a list of text"),
    ("health_json not a mapping", changed("runtime", "health_json", "ok"), "runtime.health_json must be a mapping"),
    ("version_path a number", changed("runtime", "version_path", 1), "runtime.version_path must be text or empty"),
    ("no data path", without("runtime", "data_path"), "runtime.data_path is missing"),
    ("no health path", without("runtime", "health_path"), "runtime.health_path is missing"),
    ("empty prefix", changed("runtime", "container_prefix", ""), "runtime.container_prefix is missing"),
    ("host's rule: bind address", changed("runtime", "bind_address", "localhost"),
     "runtime.bind_address must be an IP address"),
    ("host's rule: relative data path", changed("runtime", "data_path", "data"), "runtime.data_path must be an absolute path"),
    ("host's rule: restart policy", changed("runtime", "restart_policy", "sometimes"), "runtime.restart_policy must be one of"),
    ("Jinja in the runtime", changed("runtime", "data_root", "{{ my_root }}"), "runtime.data_root holds Jinja"),
    ("Jinja in a check", changed(None, "checklist", [{"name": "x", "path": "/{% if a %}a{% endif %}"}]),
     "checklist[0].path holds Jinja"),
    ("a check without a name", changed(None, "checklist", [{"path": "/"}]), "checklist[0] (?) needs a name"),
    ("a check's unknown key", changed(None, "checklist", [{"name": "x", "path": "/", "expect": 200}]),
     "checklist[0] (x) has unknown key(s) expect"),
    ("a check's bad path", changed(None, "checklist_before", [{"name": "x", "path": "health"}]),
     "checklist_before[0] (x): path must start with /"),
    ("an empty checklist", changed(None, "checklist", []), "checklist is empty: a test that checks nothing proves nothing"),
    ("checks before not a list", changed(None, "checklist_before", {"name": "x"}), "checklist_before must be a list of checks"),
    ("adoption not a mapping", changed(None, "adoption", "WEBUI_SECRET_KEY"), "adoption must be a mapping"),
    ("unknown adoption key", changed("adoption", "data_path", "/data"), "adoption.data_path: unknown key (known: secret_key_env"),
    ("secret key env not text", changed("adoption", "secret_key_env", 5), "adoption.secret_key_env must be text or empty"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "message"), [case[1:] for case in BAD_CONTENT], ids=[c[0] for c in BAD_CONTENT])
def test_a_bad_profile_is_one_line_naming_the_file_and_the_key(tmp_path, content, message):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(AppProfileError) as raised:
        resolve(str(path))
    text = str(raised.value)
    assert text.startswith(f"app profile file {path}: "), text
    assert message in text, text
    assert "\n" not in text, text
    assert text.endswith("(see docs/app-profiles.md)"), text


BAD_REFERENCES = [
    (None, "release_app_profile must be a profile name (generic-http, open-webui) or the absolute path"),
    (3, "release_app_profile must be a profile name"),
    ("", "release_app_profile must be a profile name"),
    ("nextcloud", "app profile 'nextcloud' is not one of the collection's (generic-http, open-webui): set release_app_profile"),
    ("profiles/myapp.yml", "app profile file 'profiles/myapp.yml' must be an absolute path, e.g. \"{{ inventory_dir }}/profiles/myapp.yml\""),
    ("Open-WebUI", "must be an absolute path"),
    ("/nowhere/myapp.yml", "app profile file /nowhere/myapp.yml does not exist: write it"),
]  # fmt: skip


@pytest.mark.parametrize(("reference", "message"), BAD_REFERENCES)
def test_a_profile_that_cannot_be_found_says_what_to_set(reference, message):
    with pytest.raises(AppProfileError) as raised:
        resolve(reference)
    assert message in str(raised.value), str(raised.value)
    assert "\n" not in str(raised.value), str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runtime: [unclosed\n", "is not valid YAML at line 2: fix the file"),
        ("\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_yaml_says_so(tmp_path, text, message):
    path = tmp_path / "broken.yml"
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with pytest.raises(AppProfileError) as raised:
        resolve(str(path))
    assert str(raised.value).startswith(f"app profile file {path} "), str(raised.value)
    assert message in str(raised.value), str(raised.value)


@pytest.mark.parametrize("overrides", [["data_path"], "x"])
def test_overrides_that_are_not_a_mapping_name_release_app(overrides):
    with pytest.raises(AppProfileError, match=r"^release_app must be a mapping of the app profile's runtime settings"):
        resolve("generic-http", overrides)


def test_the_lookup_returns_the_profile_and_fails_in_one_line():
    lookup = LookupModule()
    [profile] = lookup.run(["generic-http"], {}, overrides={"container_port": 5232})
    assert (profile["runtime"]["container_port"], profile["adoption"]["container_port"]) == (5232, 5232)
    with pytest.raises(AnsibleLookupError, match=r"^app profile 'nextcloud' is not one of the collection's"):
        lookup.run(["nextcloud"], {})
    with pytest.raises(AnsibleLookupError, match=r"takes one profile name or file path .*, got 2"):
        lookup.run(["open-webui", "generic-http"], {})
    with pytest.raises(AnsibleLookupError, match=r"^app_profile takes overrides= only, got override$"):
        lookup.run(["open-webui"], {}, override={})
