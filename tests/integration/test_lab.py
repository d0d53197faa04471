# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab is real: nodes answer over SSH, pull by digest from the lab registry, run the app healthy."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.lab import APP_REPO, NODE_CONTAINER_PREFIX, NODES, RELEASE_TAG, ROOT, node_sh, registry_digest, run
from tests.support.registries import free_port


def test_every_node_answers_ansible_ping(lab):
    result = run(["ansible", "all", "-m", "ansible.builtin.ping"])
    assert result.returncode == 0, result.stdout + result.stderr
    for name in NODES:
        assert f"{name} | SUCCESS" in result.stdout


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_pulls_v1_by_digest_and_runs_it_healthy(lab, node):
    digest = registry_digest("v1")
    ref = f"{APP_REPO}@{digest}"
    name = "pinned-lab-smoke"
    node_sh(node, f"docker rm -f {name} >/dev/null 2>&1; docker pull -q {ref}")
    try:
        node_sh(node, f"docker run -d --name {name} {ref}")
        deadline = time.monotonic() + 60
        health = ""
        while time.monotonic() < deadline:
            health = node_sh(node, f"docker inspect -f '{{{{.State.Health.Status}}}}' {name}").stdout.strip()
            if health in ("healthy", "unhealthy"):
                break
            time.sleep(1)
        assert health == "healthy", node_sh(node, f"docker logs {name}", check=False).stdout
        image = json.loads(node_sh(node, f"docker image inspect {ref}").stdout)[0]
        assert ref in image["RepoDigests"]
        version = node_sh(node, f"docker exec {name} wget -qO- http://127.0.0.1:8080/api/version").stdout
        assert json.loads(version) == {"version": "1.0.0"}
    finally:
        node_sh(node, f"docker rm -f {name}", check=False)


def test_release_tag_points_at_a_built_variant(lab):
    variants = {registry_digest(tag) for tag in ("v1", "v2", "broken", "slow")}
    assert len(variants) == 4, "each variant must be its own image"
    assert registry_digest(RELEASE_TAG) in variants


def test_a_stopped_node_comes_back_with_lab_up_even_with_a_stale_containerd_pid(lab):
    """Engines die between sessions; the node's /run survives its restart.

    A containerd.pid naming a live PID (here 1) made the node's dockerd wait
    for a containerd that never came, and `make lab` failed in CI.
    """
    container = f"{NODE_CONTAINER_PREFIX}prod2"
    subprocess.run(["docker", "stop", "-t", "2", container], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as scratch:
        pid_file = Path(scratch, "containerd.pid")
        pid_file.write_text("1")
        subprocess.run(
            ["docker", "cp", str(pid_file), f"{container}:/run/docker/containerd/containerd.pid"], check=True
        )
    result = subprocess.run([str(ROOT / "lab/lab.sh"), "up"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"node {NODE_CONTAINER_PREFIX.removeprefix('pinned-lab-')}prod2: was exited, starting"
        in result.stdout + result.stderr
    )
    assert node_sh("prod2", "docker info --format '{{.ServerVersion}}'").stdout.strip()


def test_a_version_whose_wheels_cannot_be_fetched_is_named_and_the_built_images_stay(lab):
    """A bad version in PINNED_LAB_OPENWEBUI_VERSIONS (a typo, PyPI unreachable) costs nothing already built."""
    before = {version: registry_digest(version, "pinned/open-webui") for version in ("0.12.0", "0.12.4", RELEASE_TAG)}
    result = run([str(ROOT / "lab/lab.sh"), "up"], env={"PINNED_LAB_OPENWEBUI_VERSIONS": "0.12.0 0.0.999 0.12.4"},
                 timeout=900)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "open-webui 0.0.999: its wheels could not be fetched" in output
    assert "keeping the images already built" in output
    after = {version: registry_digest(version, "pinned/open-webui") for version in ("0.12.0", "0.12.4", RELEASE_TAG)}
    assert after == before


def test_first_starts_of_the_signing_registry_at_once_agree_on_one_password(lab, tmp_path):
    """Test workers side by side may be the first to need the signing registry: one registry, one password, and a
    stop that stops it (each start used to write its own password and start its own registry)."""
    env = dict(os.environ, PINNED_LAB_HOME=str(tmp_path), PINNED_LAB_SIGNING_REGISTRY_PORT=str(free_port()))
    port = env["PINNED_LAB_SIGNING_REGISTRY_PORT"]
    script = [str(ROOT / "lab/lab.sh")]
    started = [subprocess.Popen([*script, "signing-registry-start"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _starter in range(4)]  # fmt: skip
    try:
        outputs = [(proc.wait(timeout=120), proc.stdout.read()) for proc in started]
        assert all(code == 0 for code, _output in outputs), outputs
        user, password = (tmp_path / "signing-registry/credentials").read_text().strip().split(":", 1)
        answer = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", f"{user}:{password}",
                                 f"http://127.0.0.1:{port}/v2/"], capture_output=True, text=True, check=False)  # fmt: skip
        assert answer.stdout == "200", "the registry does not take the password in its credentials file"
        serving = subprocess.run(
            ["pgrep", "-f", f"docker-registry serve {tmp_path}/"], capture_output=True, text=True, check=False
        )
        assert len(serving.stdout.split()) == 1, f"{len(serving.stdout.split())} registries started"
    finally:
        subprocess.run([*script, "signing-registry-stop"], env=env, capture_output=True, check=False)
        subprocess.run(["pkill", "-f", f"docker-registry serve {tmp_path}/"], check=False)
