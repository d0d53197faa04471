# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_isolation: what one tenant's container must not have, what two containers must not share; and the drift the
transaction sees from it (a tenant container that breaks isolation is replaced by one that does not)."""

from __future__ import annotations

import pytest

from ansible_collections.pinned.release.plugins.module_utils._drift import compare, container_facts, parse_expectation
from ansible_collections.pinned.release.plugins.module_utils._isolation import (
    container_problems,
    extra_mounts,
    shared_problems,
)

ISOLATED = {
    "privileged": False,
    "network_mode": "default",
    "pid_mode": "",
    "ipc_mode": "private",
    "uts_mode": "",
    "cap_add": [],
    "published_ports": ["127.0.0.1:3001:8080"],
}


@pytest.mark.parametrize(
    ("change", "allowed", "problem"),
    [
        ({}, (), None),
        ({"network_mode": "bridge"}, (), None),
        ({"published_ports": ["::1:3001:8080"]}, (), None),
        ({"privileged": True}, (), "runs privileged (--privileged)"),
        ({"network_mode": "host"}, (), "is on the host's network (--network host)"),
        ({"network_mode": "container:other"}, (), "shares the network of container other"),
        ({"pid_mode": "host"}, (), "shares the host's PID namespace (--pid host)"),
        ({"ipc_mode": "host"}, (), "shares the host's IPC namespace (--ipc host)"),
        ({"uts_mode": "host"}, (), "shares the host's UTS namespace (--uts host)"),
        ({"cap_add": ["SYS_ADMIN", "NET_ADMIN"]}, (), "has added capabilities NET_ADMIN, SYS_ADMIN (--cap-add)"),
        ({"published_ports": ["0.0.0.0:3001:8080"]}, (), "publishes 0.0.0.0:3001:8080 beyond loopback"),
        ({"published_ports": ["10.0.0.5:3001:8080"]}, (), "publishes 10.0.0.5:3001:8080 beyond loopback"),
        ({"published_ports": ["10.0.0.5:3001:8080"]}, ("10.0.0.5",), None),
        ({"published_ports": ["0.0.0.0:3001:8080/udp"]}, (), "publishes 0.0.0.0:3001:8080/udp beyond loopback"),
    ],
)
def test_container_problems(change, allowed, problem):
    problems = container_problems({**ISOLATED, **change}, allowed)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        assert problems[0].startswith(problem), problems


def test_every_problem_of_a_container_is_named():
    facts = {**ISOLATED, "privileged": True, "network_mode": "host", "published_ports": ["0.0.0.0:1:2"]}
    assert len(container_problems(facts)) == 3


@pytest.mark.parametrize(
    ("mounts", "extra"),
    [
        ([{"type": "bind", "source": "/opt/o/acme/data", "destination": "/app/backend/data"}], []),
        (
            [
                {"type": "bind", "source": "/opt/o/acme/data", "destination": "/app/backend/data"},
                {"type": "bind", "source": "/opt/o/globex/data", "destination": "/mnt"},
            ],
            ["/opt/o/globex/data:/mnt"],
        ),
        (
            [
                {
                    "type": "volume",
                    "source": "/var/lib/docker/volumes/shared/_data",
                    "destination": "/x",
                    "name": "shared",
                }
            ],
            ["/var/lib/docker/volumes/shared/_data:/x"],
        ),
        # an anonymous volume the image declares is the container's own
        ([{"type": "volume", "source": "/v/" + "a" * 64 + "/_data", "destination": "/x", "name": "a" * 64}], []),
    ],
)
def test_extra_mounts(mounts, extra):
    assert extra_mounts({"mount_details": mounts}, ["/opt/o/acme/data:/app/backend/data"]) == extra


OWNERS = {
    "acme": {"containers": {"openwebui-acme", "openwebui-acme_prev"}, "folders": ["/opt/o/acme"], "ports": [3001]},
    "globex": {"containers": {"openwebui-globex"}, "folders": ["/opt/o/globex"], "ports": [3002]},
}


def listed(name, mounts=(), ports=()):
    return {"name": name, "id": name, "labels": {}, "status": "running", "mounts": list(mounts), "ports": list(ports)}


@pytest.mark.parametrize(
    ("listing", "found"),
    [
        (
            [
                listed("openwebui-acme", ["/opt/o/acme/data"], [3001]),
                listed("openwebui-acme_prev", ["/opt/o/acme/data"]),
            ],
            {},
        ),
        ([listed("backup", ["/srv/backup"])], {}),
        (
            [listed("openwebui-globex", ["/opt/o/globex/data", "/opt/o/acme/data"], [3002])],
            {"acme": ["container openwebui-globex mounts /opt/o/acme/data, inside acme's folder"]},
        ),
        (
            [listed("sidecar", ["/opt/o/"])],
            {
                "acme": ["container sidecar mounts /opt/o/, which holds acme's folder"],
                "globex": ["container sidecar mounts /opt/o/, which holds globex's folder"],
            },
        ),
        (
            [listed("peek", ["/opt/o/acme"])],
            {"acme": ["container peek mounts /opt/o/acme, which is acme's folder"]},
        ),
        # a neighbour whose name starts alike is not inside
        ([listed("x", ["/opt/o/acme2/data"])], {}),
        ([listed("proxy", [], [3002])], {"globex": ["container proxy also publishes globex's port 3002"]}),
    ],
)
def test_shared_problems(listing, found):
    assert shared_problems(OWNERS, listing) == found


def test_the_transaction_sees_a_privileged_tenant_container_as_drift():
    inspect = {
        "Name": "/openwebui-acme",
        "State": {"Status": "running"},
        "Config": {"Env": [], "Labels": {}},
        "HostConfig": {"Privileged": True, "NetworkMode": "host", "PortBindings": {}},
        "Mounts": [
            {"Type": "bind", "Source": "/opt/o/acme/data", "Destination": "/app/backend/data"},
            {"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock"},
        ],
    }
    spec = {"name": "openwebui-acme", "mounts": ["/opt/o/acme/data:/app/backend/data"], "isolated": True}
    drift = compare(parse_expectation(spec, 0), container_facts(inspect, None))
    assert [d["field"] for d in drift] == ["isolation"] * 3
    assert [d["actual"].split(" (")[0] for d in drift] == [
        "runs privileged",
        "is on the host's network",
        "also mounts /var/run/docker.sock:/var/run/docker.sock",
    ]
    # without isolated, verify_container's callers compare only what they declare
    assert compare(parse_expectation({**spec, "isolated": False}, 0), container_facts(inspect, None)) == []


def test_the_checklists_container_checks_on_the_engine_interface(tmp_path):
    from ansible_collections.pinned.release.plugins.module_utils._checklist_container import ContainerChecks

    from .fake_host import V1, Clock, FakeEngine

    engine = FakeEngine(Clock())
    acme = tmp_path / "acme"
    acme.mkdir()
    engine.run_by_hand("openwebui-acme", V1, str(acme), 3001)
    checks = ContainerChecks(engine, "acme", "openwebui-acme", ["openwebui-acme.pinned-prev"])
    assert checks.isolation() == []
    engine.run_by_hand("peek", V1, str(acme), 3999)
    assert checks.isolation() == [f"container peek mounts {acme}, which is acme's folder"]
    assert checks.restart() is None
    assert ("stop", "openwebui-acme") in engine.calls
    assert ("start", "openwebui-acme") in engine.calls
    assert ContainerChecks(engine, "x", "openwebui-x", []).isolation() == ["container openwebui-x does not exist"]
