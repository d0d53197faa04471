# SPDX-License-Identifier: GPL-3.0-or-later
"""The one readiness rule (transaction, drift, fleet page, verify_container), on inspect JSON recorded from a lab node
and on a fake app answering HTTP."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pinned.release.plugins.module_utils._drift import container_facts
from ansible_collections.pinned.release.plugins.module_utils._http import Response
from ansible_collections.pinned.release.plugins.module_utils._readiness import AppHealth, Probe, Readiness

from .test_drift import recorded

DOCKER_ONLY = Readiness(None, AppHealth(path=None, none_is_ready=False))


@pytest.mark.parametrize(
    ("name", "health", "mutate", "baseline", "verdict", "why"),
    [
        ("rec-healthy", "healthy", None, None, "ok", ""),
        ("rec-exited", "healthy", None, None, "fail", "container exited"),
        ("rec-exited", "any", None, None, "ok", ""),
        ("rec-healthy", "healthy", lambda c: c["State"]["Health"].update(Status="unhealthy"), None, "fail", "unhealthy"),
        ("rec-healthy", "running", lambda c: c["State"]["Health"].update(Status="unhealthy"), None, "ok", ""),
        ("rec-healthy", "healthy", lambda c: c["State"]["Health"].update(Status="starting"), None, "wait",
         "health is starting"),
        ("rec-healthy", "running", lambda c: c["State"]["Health"].update(Status="starting"), None, "ok", ""),
        ("rec-healthy", "healthy", lambda c: c.update(RestartCount=3), 1, "fail", "restart count 1 -> 3"),
        ("rec-healthy", "healthy", lambda c: c["State"].update(Status="restarting"), None, "fail", "crash loop"),
        ("rec-healthy", "healthy", lambda c: c["State"].update(Status="created"), None, "wait", "is created"),
        ("rec-healthy", "healthy", lambda c: (c["State"].pop("Health"), c["Config"].update(Healthcheck=None)), None,
         "fail", "no healthcheck"),
    ],
)  # fmt: skip
def test_docker_side_of_readiness(name, health, mutate, baseline, verdict, why):
    container, image = recorded(name)
    if mutate:
        mutate(container)
    got = DOCKER_ONLY.judge(container_facts(container, image), Probe(name, name, want=health), baseline)
    assert got[0] == verdict
    assert why in got[1]


def test_a_missing_container_fails():
    assert DOCKER_ONLY.judge(None, Probe("x", "x")) == ("fail", "container does not exist")


def app(answers: dict):
    """send() of an app that answers ``{path: (status, body)}`` on any port."""

    def send(method, url, headers=None, body=None, timeout=10.0, server_name=None):
        path = "/" + url.split("/", 3)[3]
        if path not in answers:
            return Response(error="connection refused")
        status, data = answers[path]
        return Response(
            status=status,
            headers={"content-type": "application/json"},
            body=data.encode() if isinstance(data, str) else json.dumps(data).encode(),
        )

    return send


OPEN_WEBUI = AppHealth(path="/health", json={"status": True}, version_path="/api/version")


@pytest.mark.parametrize(
    ("docker_health", "answers", "expected_version", "verdict", "why"),
    [
        # Docker's healthcheck lags by its interval: the app answering is what counts (the one rule).
        ("starting", {"/health": (200, {"status": True})}, None, "ok", ""),
        ("healthy", {}, None, "wait", "/health answers connection refused"),
        ("starting", {"/health": (503, {})}, None, "wait", "/health answers 503"),
        ("starting", {"/health": (200, {"status": False})}, None, "wait", "/health answers"),
        ("starting", {"/health": (200, {"status": True}), "/api/version": (200, {"version": "0.12.4"})}, "0.12.4",
         "ok", ""),
        ("starting", {"/health": (200, {"status": True}), "/api/version": (200, {"version": "0.12.0"})}, "0.12.4",
         "fail", "says version '0.12.0', the image declares '0.12.4'"),
        # An app slow to answer its version (a busy host) is waited for: only another version fails it at once.
        ("starting", {"/health": (200, {"status": True})}, "0.12.4", "wait", "/api/version answers connection refused"),
        ("starting", {"/health": (200, {"status": True}), "/api/version": (503, {})}, "0.12.4",
         "wait", "/api/version answers 503"),
        ("starting", {"/health": (200, {"status": True}), "/api/version": (200, {"name": "x"})}, "0.12.4",
         "wait", "/api/version answers {\"name\": \"x\"} without a version"),
        ("starting", {"/health": (200, {"status": True}), "/api/version": (200, "not json")}, "0.12.4",
         "wait", "/api/version answer is not JSON"),
        ("unhealthy", {"/health": (200, {"status": True})}, None, "fail", "unhealthy"),
    ],
)  # fmt: skip
def test_the_apps_own_answer_decides_once_docker_says_it_runs(docker_health, answers, expected_version, verdict, why):
    container, image = recorded("rec-healthy")
    container["State"]["Health"]["Status"] = docker_health
    readiness = Readiness(None, OPEN_WEBUI, send=app(answers))
    got = readiness.judge(container_facts(container, image), Probe("acme", "acme", 3001, expected_version))
    assert got[0] == verdict
    assert why in got[1]


class Engine:
    """Containers whose state moves on with each look."""

    def __init__(self, states: dict) -> None:
        self.states = {name: list(seq) for name, seq in states.items()}

    def container(self, name):
        seq = self.states[name]
        return seq.pop(0) if len(seq) > 1 else seq[0]


def state(status: str, health: str = "healthy", restarts: int = 0) -> dict:
    return {"status": status, "health": health, "restart_count": restarts, "exit_code": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_fails_fast_on_each_and_waits_for_the_rest():
    clock = Clock()
    engine = Engine({
        "crash": [state("running", "starting"), state("exited")],
        "slow": [state("running", "starting")] * 20 + [state("running")],
        "never": [state("running", "starting")],
    })  # fmt: skip
    readiness = Readiness(engine, AppHealth(), clock=clock, sleep=clock.sleep)
    failures = readiness.wait([Probe(n, n) for n in ("crash", "slow", "never")], timeout=5)
    assert failures["crash"].startswith("container exited")
    assert "slow" not in failures
    assert failures["never"].startswith("not ready after the 5 s health timeout (health is starting)")
    assert clock.now == pytest.approx(5.0, abs=0.2), "the others are waited for up to the timeout, no longer"
