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
        ({"pid_mode": "container:openwebui-globex"}, (), "shares the PID namespace of container openwebui-globex"),
        ({"ipc_mode": "container:x"}, (), "shares the IPC namespace of container x"),
        ({"ipc_mode": "shareable"}, (), None),
        ({"devices": ["/dev/sda"]}, (), "has the host's devices /dev/sda (--device)"),
        ({"security_opt": ["seccomp=unconfined"]}, (), "runs without its security profile (seccomp=unconfined)"),
        ({"security_opt": ["no-new-privileges"]}, (), None),
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


def entry_for(folder, port=3001):
    return {"name": "acme", "container": "openwebui-acme",
            "declared": {"folder": str(folder), "mounts": [f"{folder}/data:/app/backend/data"],
                         "published_ports": [f"127.0.0.1:{port}:8080"], "stop_timeout": 45}}  # fmt: skip


def test_the_checklists_container_checks_judge_as_drift_does(tmp_path):
    from ansible_collections.pinned.release.plugins.module_utils._checklist_container import ContainerChecks

    from .fake_host import V1, Clock, FakeEngine

    engine = FakeEngine(Clock())
    real = tmp_path / "real"
    (real / "acme" / "data").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    engine.run_by_hand("openwebui-acme", V1, str(link / "acme" / "data"), 3001)
    checks = ContainerChecks(engine, "acme", entry_for(link / "acme"))
    assert checks.isolation() == []
    # another container on the tenant's folder by its real path: the same folder (symlinks resolved)
    engine.run_by_hand("peek", V1, str(real / "acme"), 3999)
    assert checks.isolation() == [f"container peek mounts {real / 'acme'}, which is acme's folder"]
    assert ContainerChecks(engine, "acme", entry_for(link / "acme"), ["peek"]).isolation() == [], "allowed by name"
    assert checks.restart() is None
    assert ("stop", "openwebui-acme") in engine.calls
    assert checks.memory() == (150 * 1024**2, 2 * 1024**3, None), "no limit of its own: the host's memory"
    gone = ContainerChecks(engine, "x", {**entry_for(tmp_path / "x"), "container": "openwebui-x"})
    assert gone.isolation() == ["container openwebui-x does not exist"]
    assert gone.memory() == (None, 0, "container openwebui-x does not exist")


def test_an_engine_error_is_the_checks_failure_and_a_failed_restart_starts_the_tenant_again(tmp_path):
    from ansible_collections.pinned.release.plugins.module_utils._checklist_container import ContainerChecks
    from ansible_collections.pinned.release.plugins.module_utils._docker import NotFound
    from ansible_collections.pinned.release.plugins.module_utils._engine import EngineCallError

    from .fake_host import V1, Clock, FakeEngine

    engine = FakeEngine(Clock())
    (tmp_path / "acme" / "data").mkdir(parents=True)
    engine.run_by_hand("openwebui-acme", V1, str(tmp_path / "acme" / "data"), 3001)
    checks = ContainerChecks(engine, "acme", entry_for(tmp_path / "acme"))

    def refuse(*_args):
        raise NotFound("No such container: openwebui-acme")

    engine.restart = refuse
    assert checks.restart() == "No such container: openwebui-acme; openwebui-acme was started again"

    def time_out():
        raise EngineCallError("listing containers: Read timed out")

    engine.listing = time_out
    assert checks.isolation() == ["could not look at the containers: listing containers: Read timed out"]


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([{"name": "acme", "container": 3001}], "containers[0] must have a tenant name and a container name"),
        ({"acme": "openwebui-acme"}, "containers must be the list tenant_rollout returns as tenants, got dict"),
        ([{"name": "acme", "container": "a", "declared": None}] * 2, "containers names acme more than once"),
        ([{"name": "acme", "container": "openwebui-acme", "declared": {}}], "containers[0] (acme) lacks declared"),
        (
            [
                {
                    "name": "acme",
                    "container": "c",
                    "declared": {"folder": "/x", "mounts": ["/x/data:/d"], "published_ports": ["3001"]},
                }
            ],
            "containers[0] (acme): declared mounts must be source:destination and published_ports ip:host port",
        ),
        (
            [
                {
                    "name": "acme",
                    "container": "c",
                    "declared": {
                        "folder": "/x",
                        "mounts": ["/x/data:/d"],
                        "published_ports": [],
                        "stop_timeout": "30s",
                    },
                }
            ],
            "stop_timeout a number of seconds",
        ),
    ],
)
def test_container_entries_are_checked_before_anything(entries, problem):
    from ansible_collections.pinned.release.plugins.module_utils._checklist_container import container_entry_problems

    assert any(problem in p for p in container_entry_problems(entries)), container_entry_problems(entries)
