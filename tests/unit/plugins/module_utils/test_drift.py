# SPDX-License-Identifier: GPL-3.0-or-later
"""_drift on inspect JSON recorded from a lab node (docker 20.10)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ansible_collections.pinned.release.plugins.module_utils._drift import (
    DriftSpecError,
    compare,
    container_facts,
    drift_message,
    normalise_port,
    parse_expectation,
    published_ports,
    repo_digests,
    secret_values,
)
from ansible_collections.pinned.release.plugins.module_utils._secrets import SECRET_MASK

RECORDED = json.loads((Path(__file__).parents[2] / "fixtures/inspect_lab_node.json").read_text())
REPO = "127.0.0.1:5000/pinned/openwebui"
V1 = "sha256:70d052dbb2db67fb23e6277e470717de202e746d4beda90f68a23bb34baf5a4b"
V2 = "sha256:71c062ea7ddaba874b7ac1ec9ecfab2930aa4853df7a381b9d15c16c7644db33"


def recorded(name: str) -> tuple:
    container = copy.deepcopy(RECORDED["containers"][name])
    return container, copy.deepcopy(RECORDED["images"].get(container["Image"]))


def facts_for(name: str, digest: str = V1, mutate=None, image_present: bool = True) -> dict:
    container, image = recorded(name)
    if mutate:
        mutate(container, image)
    ref = parse_expectation({"name": name, "image": f"{REPO}@{digest}"}, 0).image
    return container_facts(container, image if image_present else None, ref)


HEALTHY_SPEC = {
    "name": "rec-healthy",
    "image": f"{REPO}@{V1}",
    "env": {"WEBUI_URL": "http://x", "WEBUI_SECRET_KEY": "s3cr3t"},
    "secret_env": ["WEBUI_SECRET_KEY"],
    "labels": {"pinned.release.managed": "true", "pinned.release.tenant": "rec"},
    "mounts": ["/tmp/rec:/app/backend/data"],
    "published_ports": ["127.0.0.1:3999:8080"],
    "restart_policy": "unless-stopped",
}


def test_recorded_healthy_container_has_no_drift():
    container, image = recorded("rec-healthy")
    expectation = parse_expectation(HEALTHY_SPEC, 0)
    facts = container_facts(container, image, expectation.image)
    assert facts["digest"] == V1
    assert (facts["status"], facts["health"]) == ("running", "healthy")
    assert compare(expectation, facts) == []


@pytest.mark.parametrize(
    ("change", "field", "expected", "actual"),
    [
        ({"image": f"{REPO}@{V2}"}, "digest", V2, V1),
        ({"env": {"WEBUI_URL": "http://y"}}, "env.WEBUI_URL", "http://y", "http://x"),
        ({"env": {"NEW": "1"}}, "env.NEW", "1", None),
        (
            {"env": {"WEBUI_SECRET_KEY": "other"}, "secret_env": ["WEBUI_SECRET_KEY"]},
            "env.WEBUI_SECRET_KEY",
            SECRET_MASK,
            "differs",
        ),
        (
            {"env": {"MISSING_SECRET": "x"}, "secret_env": ["MISSING_SECRET"]},
            "env.MISSING_SECRET",
            SECRET_MASK,
            "missing",
        ),
        ({"labels": {"pinned.release.tenant": "other"}}, "labels.pinned.release.tenant", "other", "rec"),
        (
            {"mounts": ["/opt/x:/app/backend/data"]},
            "mounts",
            "/opt/x:/app/backend/data",
            ["/tmp/rec:/app/backend/data"],
        ),
        ({"published_ports": ["3999:8080"]}, "published_ports", ["0.0.0.0:3999:8080"], ["127.0.0.1:3999:8080"]),
        ({"published_ports": []}, "published_ports", [], ["127.0.0.1:3999:8080"]),
        ({"restart_policy": "always"}, "restart_policy", "always", "unless-stopped"),
    ],
)
def test_each_field_drifts(change, field, expected, actual):
    spec = {"name": "rec-healthy", "image": f"{REPO}@{V1}", **change}
    expectation = parse_expectation(spec, 0)
    container, image = recorded("rec-healthy")
    drift = compare(expectation, container_facts(container, image, expectation.image))
    assert drift == [{"field": field, "expected": expected, "actual": actual}]


def test_secret_values_never_in_drift():
    spec = {**HEALTHY_SPEC, "env": {"WEBUI_SECRET_KEY": "expected-secret"}}
    expectation = parse_expectation(spec, 0)
    container, image = recorded("rec-healthy")
    facts = container_facts(container, image, expectation.image)
    text = json.dumps(compare(expectation, facts))
    assert "expected-secret" not in text
    assert "s3cr3t" not in text
    assert secret_values([expectation], {"rec-healthy": facts}) == {"expected-secret", "s3cr3t"}


@pytest.mark.parametrize(
    ("name", "expected_digest", "image_present", "digest", "source"),
    [
        ("rec-healthy", V1, True, V1, "RepoDigests"),  # started by digest
        ("rec-tag", V2, True, V2, "RepoDigests"),  # started by tag: recognised by its RepoDigests
        ("rec-tag", V1, True, V2, "RepoDigests"),  # tag started: wrong digest is seen as such
        ("rec-healthy", V1, False, V1, "container config (image no longer present locally)"),
        ("rec-tag", V2, False, None, "unknown (image no longer present locally)"),
    ],
)
def test_digest_resolution(name, expected_digest, image_present, digest, source):
    facts = facts_for(name, expected_digest, image_present=image_present)
    assert (facts["digest"], facts["digest_source"]) == (digest, source)


def test_tag_moved_since_start_still_reports_the_running_digest():
    # The container was started as :v2; the tag now points elsewhere: RepoDigests of its image still say V2.
    def moved(container, image):
        image["RepoTags"] = []

    assert facts_for("rec-tag", V2, mutate=moved)["digest"] == V2


def test_image_retagged_locally():
    def retag(container, image):
        image["RepoTags"].append("local/alias:latest")
        container["Config"]["Image"] = "local/alias:latest"

    assert facts_for("rec-tag", V2, mutate=retag)["digest"] == V2


def test_image_with_several_repositories_picks_the_expected_one():
    def extra(container, image):
        image["RepoDigests"].insert(0, f"ghcr.io/acme/mirror@{V1}")

    assert facts_for("rec-tag", V2, mutate=extra)["digest"] == V2


def test_the_image_labels_are_the_images_own_not_the_containers():
    """The version an image declares is read from the image; a label set on the container at create time is not it."""

    def label(container, image):
        image.setdefault("Config", {})["Labels"] = {"org.opencontainers.image.version": "0.12.4"}
        container["Config"]["Labels"]["org.opencontainers.image.version"] = "set by hand"

    assert facts_for("rec-healthy", mutate=label)["image_labels"] == {"org.opencontainers.image.version": "0.12.4"}
    assert facts_for("rec-healthy")["image_labels"] == {}, "an image without labels (Docker says null)"
    assert facts_for("rec-healthy", image_present=False)["image_labels"] == {}, "an image no longer on the host"


def test_missing_container():
    expectation = parse_expectation({"name": "gone", "image": f"{REPO}@{V1}"}, 0)
    assert compare(expectation, None) == [{"field": "exists", "expected": True, "actual": False}]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("openwebui-acme", "must be a mapping"),
        ({}, "name is required"),
        ({"name": 3}, "name is required"),
        ({"name": "a", "image": "repo:tag"}, r"containers\[0\] \(a\).image: .*not pinned"),
        ({"name": "a", "image": "Repo@sha256:" + "a" * 64}, "lowercase"),
        ({"name": "a", "env": ["A=1"]}, r"env must be a mapping"),
        ({"name": "a", "mounts": "/a:/b"}, "mounts must be a list of strings"),
        ({"name": "a", "health": "great"}, "health must be one of"),
        ({"name": "a", "secret_env": ["K"]}, "names K without an expected value"),
        ({"name": "a", "colour": "red"}, "unknown key"),
    ],
)
def test_parse_expectation_rejects(spec, message):
    with pytest.raises(DriftSpecError, match=message):
        parse_expectation(spec, 0)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("127.0.0.1:8081:8080", "127.0.0.1:8081:8080"),
        ("8081:8080", "0.0.0.0:8081:8080"),
        ("127.0.0.1:53:53/udp", "127.0.0.1:53:53/udp"),
        ("1:2/tcp", "0.0.0.0:1:2"),
    ],
)
def test_normalise_port(text, normalised):
    assert normalise_port(text) == normalised


def test_published_ports_from_bindings():
    bindings = {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "3001"}, {"HostIp": "", "HostPort": "3002"}],
        "53/udp": [{"HostIp": "", "HostPort": "53"}],
    }
    assert published_ports(bindings) == ["0.0.0.0:3002:8080", "0.0.0.0:53:53/udp", "127.0.0.1:3001:8080"]


def test_repo_digests_normalises_docker_hub():
    assert repo_digests({"RepoDigests": [f"nginx@{V1}", "garbage"]}) == {"docker.io/library/nginx": [V1]}


def test_drift_message_names_container_field_expected_actual():
    message = drift_message(
        [{"name": "openwebui-acme", "drift": [{"field": "digest", "expected": V2, "actual": V1}]}],
        [{"name": "openwebui-ghost", "digest": V1, "status": "running"}],
    )
    assert (
        message
        == f"drift: openwebui-acme: digest expected {V2}, actual {V1}; openwebui-ghost: unexpected managed container (digest {V1}, running)"
    )
