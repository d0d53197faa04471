# SPDX-License-Identifier: GPL-3.0-or-later
"""verify_container on a real lab node's engine with the stand-in images."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.lab import APP_REPO, ansible_module, node_sh, registry_digest

MODULE = "pinned.release.verify_container"
NODE = "test1"
PREFIX = "vc-test-"
SECRET = "vc-secret-value-9f3e1a"


@pytest.fixture(scope="module")
def digests(lab):
    found = {tag: registry_digest(tag) for tag in ("v1", "v2", "broken", "slow")}
    for digest in found.values():
        node_sh(NODE, f"docker pull -q {APP_REPO}@{digest}")
    return found


@pytest.fixture
def containers(digests):
    """Starts containers on the node by name; removes them (and only them) afterwards."""
    started = []

    def start(name, image, args=""):
        node_sh(
            NODE, f"docker rm -f {PREFIX}{name} >/dev/null 2>&1; docker run -d --name {PREFIX}{name} {args} {image}"
        )
        started.append(PREFIX + name)
        return PREFIX + name

    yield start
    if started:
        node_sh(NODE, "docker rm -f " + " ".join(started), check=False)


def wait_for(name, health="healthy", timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = node_sh(NODE, f"docker inspect -f '{{{{.State.Health.Status}}}}' {name}").stdout.strip()
        if state == health:
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} not {health}")


def check(args, check_mode=False):
    return ansible_module(MODULE, args, check=check_mode, host=NODE)


def test_healthy_match_with_full_config(digests, containers):
    ref = f"{APP_REPO}@{digests['v1']}"
    name = containers(
        "ok", ref,
        f"--restart unless-stopped -p 127.0.0.1:3901:8080 -v /tmp/{PREFIX}ok:/app/backend/data "
        f"-e WEBUI_URL=http://ok.lab -e WEBUI_SECRET_KEY={SECRET} --label pinned.release.managed=vc",
    )  # fmt: skip
    wait_for(name)
    spec = {
        "name": name, "image": ref, "env": {"WEBUI_URL": "http://ok.lab"},
        "secret_env": {"WEBUI_SECRET_KEY": SECRET}, "labels": {"pinned.release.managed": "vc"},
        "mounts": [f"/tmp/{PREFIX}ok:/app/backend/data"], "published_ports": ["127.0.0.1:3901:8080"],
        "restart_policy": "unless-stopped",
    }  # fmt: skip
    for check_mode in (False, True):
        result = check({"containers": [spec]}, check_mode)
        assert result.get("failed") is not True, result
        entry = result["containers"][0]
        assert (entry["digest"], entry["status"], entry["health"], entry["drift"]) == (
            digests["v1"],
            "running",
            "healthy",
            [],
        )
        assert result["summary"] == {"checked": 1, "ok": 1, "drifted": 0, "missing": 0, "unexpected": 0}
        assert result["changed"] is False
        assert SECRET not in result["_stdout"]


def test_wrong_digest_missing_and_exited(digests, containers):
    running = containers("v2", f"{APP_REPO}@{digests['v2']}")
    exited = containers("exited", f"{APP_REPO}@{digests['v1']}", "--entrypoint /bin/false")
    wait_for(running)
    result = check({
        "containers": [
            {"name": running, "image": f"{APP_REPO}@{digests['v1']}"},
            {"name": f"{PREFIX}nothere", "image": f"{APP_REPO}@{digests['v1']}"},
            {"name": exited, "image": f"{APP_REPO}@{digests['v1']}"},
        ],
        "fail_on_drift": False,
    })  # fmt: skip
    assert result.get("failed") is not True, result
    by_name = {c["name"]: c for c in result["containers"]}
    assert by_name[running]["drift"] == [{"field": "digest", "expected": digests["v1"], "actual": digests["v2"]}]
    assert by_name[f"{PREFIX}nothere"]["exists"] is False
    assert by_name[exited]["status"] == "exited"
    assert by_name[exited]["drift"][0]["field"] == "health"
    assert result["summary"] == {"checked": 3, "ok": 0, "drifted": 3, "missing": 1, "unexpected": 0}
    failing = check({"containers": [{"name": running, "image": f"{APP_REPO}@{digests['v1']}"}]})
    assert failing["failed"] is True
    assert failing["msg"] == f"drift: {running}: digest expected {digests['v1']}, actual {digests['v2']}"


def test_broken_image_fails_fast_with_logs(digests, containers):
    name = containers("broken", f"{APP_REPO}@{digests['broken']}", f"-e WEBUI_SECRET_KEY={SECRET}")
    started = time.monotonic()
    result = check(
        {
            "containers": [{"name": name, "secret_env": {"WEBUI_SECRET_KEY": SECRET}}],
            "wait_timeout": 180,
        }
    )
    elapsed = time.monotonic() - started
    assert result["failed"] is True
    assert "healthcheck reports unhealthy" in result["msg"]
    assert elapsed < 60, f"took {elapsed:.0f} s: did not fail fast"
    assert any("listening on :8080" in line for line in result["containers"][0]["logs"])
    assert SECRET not in result["_stdout"]


def test_slow_image_waits_and_passes(digests, containers):
    name = containers("slow", f"{APP_REPO}@{digests['slow']}")
    result = check({"containers": [{"name": name, "image": f"{APP_REPO}@{digests['slow']}"}], "wait_timeout": 90})
    assert result.get("failed") is not True, result
    assert result["waited"] >= 5
    assert result["containers"][0]["health"] == "healthy"


def test_crash_loop_fails_fast(digests, containers):
    # v1 on schema-2 data refuses to start; with a restart policy it loops.
    node_sh(
        NODE, f"rm -rf /tmp/{PREFIX}loop && mkdir -p /tmp/{PREFIX}loop && echo 2 > /tmp/{PREFIX}loop/schema_version"
    )
    name = containers(
        "loop", f"{APP_REPO}@{digests['v1']}", f"--restart unless-stopped -v /tmp/{PREFIX}loop:/app/backend/data"
    )
    started = time.monotonic()
    result = check({"containers": [{"name": name}], "wait_timeout": 180})
    assert result["failed"] is True
    assert time.monotonic() - started < 60
    assert any(reason in result["msg"] for reason in ("restart", "exited"))
    assert any("refusing to start" in line for line in result["containers"][0]["logs"])


def test_secret_env_drift_never_shows_the_value(digests, containers):
    name = containers("secret", f"{APP_REPO}@{digests['v1']}", f"-e WEBUI_SECRET_KEY={SECRET}-changed-by-hand")
    wait_for(name)
    result = check(
        {
            "containers": [{"name": name, "secret_env": {"WEBUI_SECRET_KEY": SECRET}}],
            "fail_on_drift": False,
        }
    )
    assert result["containers"][0]["drift"] == [
        {"field": "env.WEBUI_SECRET_KEY", "expected": "********", "actual": "differs"}
    ]
    whole = json.dumps(result)
    assert SECRET not in whole
    assert "changed-by-hand" not in whole


def test_selector_reports_unexpected_managed_container(digests, containers):
    ref = f"{APP_REPO}@{digests['v1']}"
    declared = containers("declared", ref, "--label pinned.release.managed=vc-sel")
    ghost = containers("ghost", f"{APP_REPO}@{digests['v2']}", "--label pinned.release.managed=vc-sel")
    containers("unmanaged", ref)
    wait_for(declared)
    result = check(
        {
            "containers": [{"name": declared}],
            "selector": {"pinned.release.managed": "vc-sel"},
            "image": ref,
            "fail_on_drift": False,
        }
    )
    assert [u["name"] for u in result["unexpected"]] == [ghost]
    assert result["unexpected"][0]["digest"] == digests["v2"]
    assert result["drifted"] is True
    assert result["summary"]["unexpected"] == 1
    failing = check(
        {"containers": [{"name": declared}], "selector": {"pinned.release.managed": "vc-sel"}, "image": ref}
    )
    assert f"{ghost}: unexpected managed container" in failing["msg"]


def test_started_by_tag_that_moved_and_retagged(digests, containers):
    node_sh(NODE, f"docker tag {APP_REPO}@{digests['v2']} {APP_REPO}:vc-moving")
    name = containers("bytag", f"{APP_REPO}:vc-moving")
    node_sh(
        NODE,
        f"docker tag {APP_REPO}@{digests['v1']} {APP_REPO}:vc-moving && docker tag {APP_REPO}@{digests['v2']} local/alias:vc",
    )
    try:
        wait_for(name)
        result = check({"containers": [{"name": name, "image": f"{APP_REPO}@{digests['v2']}"}]})
        assert result.get("failed") is not True, result
        assert result["containers"][0]["digest"] == digests["v2"]
        assert result["containers"][0]["image"] == f"{APP_REPO}:vc-moving"
    finally:
        node_sh(NODE, f"docker rmi {APP_REPO}:vc-moving local/alias:vc", check=False)


def test_bad_input(digests):
    unreachable = check({"containers": [{"name": "x"}], "docker_host": "unix:///run/vc-nothere.sock"})
    assert unreachable["failed"] is True
    assert (
        "cannot reach the Docker engine at unix:///run/vc-nothere.sock (No such file or directory)"
        in unreachable["msg"]
    )
    malformed = check({"containers": [{"name": "x", "image": f"{APP_REPO}:v1"}]})
    assert "containers[0] (x).image" in malformed["msg"]
    assert "not pinned" in malformed["msg"]
    wrong_choice = check({"containers": [{"name": "x", "health": "great"}]})
    assert (
        "value of health must be one of: healthy, running, any, got: great found in containers" in wrong_choice["msg"]
    )
    # Ansible core validates element types first; its message ("dictionary requested") names no option, ours does.
    wrong_type = check({"containers": ["just-a-name"]})
    assert wrong_type["failed"] is True
    assert wrong_type["msg"] == "containers[0] must be a mapping, got str 'just-a-name'"
    nothing = check({"fail_on_drift": False})
    assert "nothing to check" in nothing["msg"]


def test_waiting_on_a_container_that_does_not_exist_names_it(digests):
    result = check({"containers": [{"name": "vc-no-such-container"}], "wait_timeout": 5})
    assert result["failed"] is True
    assert "vc-no-such-container: container does not exist" in result["msg"]


def test_a_short_secret_does_not_garble_the_digest_in_the_result(digests, containers):
    """A secret that happens to be part of the digest: the digest comes back whole, the secret value never."""
    v1 = digests["v1"]
    short = v1.split(":")[1][10:16]
    name = containers("short", f"{APP_REPO}@{v1}", f"-e SHORT={short}")
    wait_for(name)
    result = check({"containers": [{"name": name, "image": f"{APP_REPO}@{v1}", "secret_env": {"SHORT": short}}]})
    assert result.get("failed") is not True, result
    assert result["containers"][0]["digest"] == v1
    assert result["invocation"]["module_args"]["containers"][0]["secret_env"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_isolated_names_each_break_of_isolation_on_a_real_engine(digests, containers):
    ref = f"{APP_REPO}@{digests['v1']}"
    clean = containers("iso-ok", ref, f"-p 127.0.0.1:3903:8080 -v /tmp/{PREFIX}iso-ok:/app/backend/data")
    loose = containers(
        "iso-loose", ref,
        f"--cap-add NET_ADMIN --pid host -p 0.0.0.0:3904:8080 -v /tmp/{PREFIX}iso:/app/backend/data "
        f"-v /tmp/{PREFIX}iso-ok:/peek",
    )  # fmt: skip
    result = check({
        "containers": [
            {"name": clean, "mounts": [f"/tmp/{PREFIX}iso-ok:/app/backend/data"], "isolated": True, "health": "any"},
            {"name": loose, "mounts": [f"/tmp/{PREFIX}iso:/app/backend/data"], "isolated": True, "health": "any"},
        ],
        "image": ref,
        "fail_on_drift": False,
    })  # fmt: skip
    assert result.get("failed") is not True, result
    by_name = {c["name"]: c for c in result["containers"]}
    assert by_name[clean]["drift"] == []
    found = [d["actual"] for d in by_name[loose]["drift"] if d["field"] == "isolation"]
    # (--privileged cannot start inside the lab's nodes, which run without every capability: unit-tested)
    assert [f.split(" (")[0].split(":")[0] for f in found] == [
        "shares the host's PID namespace",
        "has added capabilities NET_ADMIN",
        "publishes 0.0.0.0",
        f"also mounts /tmp/{PREFIX}iso-ok",
    ], found
