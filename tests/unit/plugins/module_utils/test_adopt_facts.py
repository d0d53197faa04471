# SPDX-License-Identifier: GPL-3.0-or-later
"""adoption_facts over the fake engine: which containers of a host are read, what is read in them, and how an engine
that cannot answer is taken. (What an entry says of one container: test_adopt.py.)"""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.module_utils._adopt import (
    AdoptionError,
    AdoptionQuery,
    adoption_facts,
    read_sites,
)
from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError
from ansible_collections.pinned.release.plugins.module_utils._tenants import MANAGED_LABEL

from .fake_host import OTHER_REPO_V1, REPO, V1, V2, Clock, FakeEngine

KEY_FILE = "/app/backend/.webui_secret_key"
SITES = {"/etc/nginx/conf.d/acme.conf": "server { server_name acme.example; location / { proxy_pass http://127.0.0.1:3001; } }",
         "/etc/nginx/conf.d/globex.conf": "server { server_name globex.example; location / { proxy_pass http://127.0.0.1:3002; } }"}  # fmt: skip


@pytest.fixture
def engine(tmp_path):
    """A host with two hand-started tenants of the app (acme by tag with its key in the env, globex with the key the
    app generated in the container), one managed tenant and one container of another image."""
    engine = FakeEngine(Clock())
    for name in ("acme", "globex", "managed", "other"):
        (tmp_path / name).mkdir()
    engine.run_by_hand("legacy-acme", V1, str(tmp_path / "acme"), 3001, {"WEBUI_SECRET_KEY": "k-acme"},
                       started_as=f"{REPO}:0.12.0", host_ip="0.0.0.0", volume="acme-data")  # fmt: skip  # noqa: S104
    engine.run_by_hand("legacy-globex", V2, str(tmp_path / "globex"), 3002, files={KEY_FILE: "k-globex\n"})
    engine.run_by_hand("openwebui-managed", V1, str(tmp_path / "managed"), 3003, {"WEBUI_SECRET_KEY": "m"},
                       labels={MANAGED_LABEL: "true"})  # fmt: skip
    engine.run_by_hand("sidecar", OTHER_REPO_V1, str(tmp_path / "other"), 3004)
    return engine


def facts(engine, **query) -> dict:
    return adoption_facts(engine, AdoptionQuery(repository=REPO, **query), SITES)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({}, ["legacy-acme", "legacy-globex"]),  # the managed one and another image's are left alone
        ({"name_pattern": "*-globex"}, ["legacy-globex"]),
        ({"names": ("legacy-acme", "sidecar")}, ["legacy-acme", "sidecar"]),  # named: read whatever it runs
        ({"names": ("openwebui-managed",)}, []),  # managed already: never adopted again
    ],
)
def test_which_containers_are_read(engine, query, found):
    assert [e["container"] for e in facts(engine, **query)["containers"]] == found


def test_a_container_started_by_tag_is_read_whole(engine):
    acme = facts(engine)["containers"][0]
    assert (acme["image"], acme["digest_ref"]) == (f"{REPO}:0.12.0", V1)
    assert (acme["secrets"], acme["secret_key_source"]) == ({"WEBUI_SECRET_KEY": "k-acme"}, "env")
    assert (acme["data"]["kind"], acme["data"]["name"]) == ("volume", "acme-data")
    assert (acme["domains"], acme["sites"]) == (["acme.example"], ["/etc/nginx/conf.d/acme.conf"])
    assert acme["problems"] == []
    assert acme["changes"] == [f"runs by tag ({REPO}:0.12.0): pinned to its digest {V1.split('@')[1]}",
                               "port 3001 moves from 0.0.0.0 to loopback behind nginx"]  # fmt: skip
    assert ("exec", acme["container"]) not in engine.calls, "the key was in the env: nothing run in the container"


def test_the_key_the_app_generated_is_read_inside_the_container(engine):
    globex = facts(engine)["containers"][1]
    assert (globex["secrets"], globex["secret_key_source"], globex["problems"]) == (
        {"WEBUI_SECRET_KEY": "k-globex"}, "file", [])  # fmt: skip


def test_a_container_started_by_image_id_is_found_by_what_its_image_is_known_as(engine, tmp_path):
    (tmp_path / "initech").mkdir()
    engine.run_by_hand("initech", V1, str(tmp_path / "initech"), 3005, {"WEBUI_SECRET_KEY": "k"},
                       started_as=FakeEngine.image_id(V1))  # fmt: skip
    assert "initech" in [e["container"] for e in facts(engine)["containers"]]


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        # docker exec failing (no cat in the image, the daemon refusing) is a key not found: a problem line
        (("exec", "legacy-globex"), "no WEBUI_SECRET_KEY in its env nor in the container"),
        (None, "no WEBUI_SECRET_KEY in its env nor in the container"),  # no key file in the container
    ],
)
def test_a_key_that_cannot_be_read_is_a_problem_line(engine, fault, problem):
    globex = engine.by_name("legacy-globex")
    if fault:
        engine.faults[fault] = EngineCallError("reading: OCI runtime exec failed: exec: cat: not found")
    else:
        globex.files.clear()
    (entry,) = facts(engine, names=("legacy-globex",))["containers"]
    assert any(p.startswith(problem) for p in entry["problems"]), entry["problems"]


def test_a_stopped_container_is_not_entered_and_says_so(engine):
    engine.stop("legacy-globex", 10)
    (entry,) = facts(engine, names=("legacy-globex",))["containers"]
    assert ("exec", engine.by_name("legacy-globex").id) not in engine.calls
    assert entry["problems"][:1] == ["it is exited: start it, or leave it out of the adoption"]


def test_a_named_container_that_is_not_there_is_one_line(engine):
    with pytest.raises(
        AdoptionError, match=r"^no container named ghost, phantom on this host: check names \(docker ps -a\)$"
    ):
        facts(engine, names=("legacy-acme", "ghost", "phantom"))


def test_an_engine_error_reading_a_container_names_the_call(engine):
    engine.faults[("inspect", "legacy-acme")] = EngineCallError("inspecting container legacy-acme: 500 Server Error")
    with pytest.raises(EngineCallError, match="inspecting container legacy-acme"):
        facts(engine)


def test_an_image_that_cannot_be_inspected_while_choosing_is_not_the_apps(engine):
    engine.faults[("inspect_image", FakeEngine.image_id(OTHER_REPO_V1))] = EngineCallError("inspecting image: 500")
    assert [e["container"] for e in facts(engine)["containers"]] == ["legacy-acme", "legacy-globex"]


def test_read_sites_reads_the_files_of_the_folders_there_are(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d/a.conf").write_text("server {}")
    (tmp_path / "conf.d/sub").mkdir()
    assert read_sites((str(tmp_path / "conf.d"), str(tmp_path / "absent"))) == {
        str(tmp_path / "conf.d/a.conf"): "server {}"
    }


def test_the_query_is_the_modules_options():
    query = AdoptionQuery.from_params({"repository": REPO, "names": ["a"], "container_port": 9000, "docker_host": "x"})
    assert (query.names, query.container_port, query.settings["secret_patterns"][0]) == (("a",), 9000, "*KEY*")


def test_an_app_without_a_secret_key_is_adopted_without_looking_for_one(engine):
    """generic-http's adoption: secret_key_env and secret_key_file are '' (the app keeps no session key)."""
    found = facts(engine, secret_key_env="", secret_key_file="")["containers"]
    globex = next(e for e in found if e["container"] == "legacy-globex")
    assert (globex["secret_key_source"], globex["problems"]) == (None, [])
    assert "" not in globex["secrets"]
    assert not [call for call in engine.calls if call[0] == "exec"], "nothing read in a container for a key"
