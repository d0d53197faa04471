# SPDX-License-Identifier: GPL-3.0-or-later
"""deploy.yml and drift.yml run by ansible-runner, the engine AWX/AAP runs a job template with.

Each job goes through runner's Python API as an AWX execution node runs it: the project is this checkout, which
runner runs ansible-playbook in (so Ansible finds the project's ansible.cfg there: no ANSIBLE_CONFIG is set), the
inventory is this lab cell's, extra vars come as a job template's, and nothing is asked on a terminal. What AWX shows
of a job is its events: each host's result must be in them, and a failure must name its host there.

The tests of this module run in order and build on each other's state, like a release does.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import pytest

from tests.support.lab import APP_REPO, ROOT, node_sh, registry_digest
from tests.support.workflow import PRODUCTION, TENANTS, Run, assert_no_secret_in, diagnostics


@dataclass
class Job:
    """What an ansible-runner job left: status, rc, and its events in the order Ansible emitted them."""

    ident: str
    status: str
    rc: int
    events: list
    stdout: str

    def named(self, *names: str) -> list:
        return [e for e in self.events if e["event"] in names]

    def stats(self) -> dict:
        """The recap: {ok, changed, failures, dark (unreachable), processed, ...: {host: count}}."""
        stats = [e.get("event_data", {}) for e in self.named("playbook_on_stats")]
        assert len(stats) == 1, f"{self.ident}: {len(stats)} playbook_on_stats events"
        assert "processed" in stats[0], f"{self.ident}: the playbook_on_stats event carries no counts: {stats[0]}"
        return stats[0]

    def results(self, action: str) -> dict:
        """{host: res} of the runner_on_ok events of a task, by its action (the last per host)."""
        return {
            e["event_data"]["host"]: e["event_data"].get("res", {})
            for e in self.named("runner_on_ok")
            if e.get("event_data", {}).get("task_action") == action
        }

    def tenants(self, host: str) -> dict:
        """{tenant: its entry} in a host's tenant_rollout result in the events: outcome, or in check mode action and drift."""
        res = self.results("pinned.release.tenant_rollout").get(host)
        assert res is not None, f"{self.ident}: no tenant_rollout result for {host} in the events"
        assert "tenants" in res, f"{self.ident}: {host}'s tenant_rollout result in the events has no tenants: {res}"
        return {t["name"]: t for t in res["tenants"]}

    def checked(self, host: str) -> dict:
        """{tenant: its entry} in a host's drift check (verify_container on its tenants) in the events."""
        res = self.results("pinned.release.verify_container").get(host)
        assert res is not None, f"{self.ident}: no verify_container result for {host} in the events"
        assert "containers" in res, f"{self.ident}: {host}'s verify_container result has no containers: {res}"
        return {t["tenant"]: t for t in res["containers"]}

    def failed(self) -> list:
        """(host, task, message) of each runner_on_failed and runner_on_unreachable event."""
        return [(e["event_data"].get("host"), e["event_data"].get("task"), e["event_data"].get("res", {}).get("msg"))
                for e in self.named("runner_on_failed", "runner_on_unreachable")]  # fmt: skip

    def why(self) -> str:
        """What to read when an assertion on this job fails: its status, its failures, the end of its output."""
        return f"{self.ident}: status {self.status}, rc {self.rc}, failed {self.failed()}\n{self.stdout[-3000:]}"


def run_job(ws, ident: str, playbook: str, limit: str | None = None, extravars: dict | None = None) -> Job:
    """One job through ansible_runner.run(), on the module's workspace inventory (a copy of this cell's)."""
    # A private data directory per job, as AWX makes: runner keeps env/extravars there, and a later job without extra
    # vars in the same directory would still be given the earlier job's.
    private = ws.directory.parent / "runner" / ident
    private.mkdir(parents=True)
    env = {
        # The ansible-playbook of this Python's venv: an execution environment has it on PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_NOCOLOR": "1",
        "PINNED_OPERATOR": "pytest",
        "PINNED_LAB_APP": ws.app,
    }
    # Runner starts from this process's environment. An AWX job has no ANSIBLE_CONFIG (make exports one for the other
    # tests): Ansible finds the project's ansible.cfg in the project directory runner runs it in, and without that
    # file's collections_path no pinned.release role or module would resolve.
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("ANSIBLE_CONFIG", raising=False)
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(ROOT),
            playbook=playbook,
            inventory=str(ws.inventory),
            limit=limit,
            extravars=extravars or {},
            envvars=env,
            ident=ident,
            quiet=True,
            timeout=300,  # a prompt nobody answers ends the job as 'timeout'
        )
    assert runner.config.cwd == str(ROOT), f"runner ran ansible-playbook in {runner.config.cwd}"
    assert "ANSIBLE_CONFIG" not in runner.config.env
    with runner.stdout as output:
        stdout = output.read()
    job = Job(ident, runner.status, runner.rc, list(runner.events), stdout)
    ws.runs.append(Run([playbook, f"--limit={limit}", "(ansible-runner)"], job.rc, stdout))  # the ws fixture checks it
    assert_no_secret_in(json.dumps(job.events))  # AWX keeps every event in its database
    return job


def declared(node: str) -> set:
    return {t["name"] for t in TENANTS[node]}


def assert_succeeded_on(job: Job, hosts: list) -> None:
    assert (job.status, job.rc) == ("successful", 0), job.why() + diagnostics(hosts)
    stats = job.stats()
    assert sorted(stats["processed"]) == hosts, stats
    assert (stats["failures"], stats["dark"]) == ({}, {}), stats
    assert job.failed() == []
    assert sorted(job.results("pinned.release.tenant_rollout")) == hosts, "not one tenant_rollout result per host"


def test_deploy_to_test_through_runner_carries_the_host_result_in_its_events(ws):
    v1 = ws.release("v1")
    job = run_job(ws, "deploy-test", "playbooks/deploy.yml", limit="test")
    assert_succeeded_on(job, ["test1"])
    outcomes = {name: (t.get("outcome"), t.get("image")) for name, t in job.tenants("test1").items()}
    assert outcomes == {name: ("created", f"{APP_REPO}@{v1}") for name in declared("test1")}, outcomes
    checklist = job.results("pinned.release.run_checklist").get("test1", {})
    assert checklist.get("passed") is True, f"no passing checklist result for test1 in the events: {checklist}"
    assert {t["name"] for t in checklist["tenants"]} == declared("test1")


def test_promote_the_tested_digest(ws):
    run = ws.play("playbooks/promote.yml")
    assert run.returncode == 0, run.output[-3000:]
    assert ws.pin()["release_pin"]["digest"] == registry_digest("v1")


def test_production_rollout_through_runner_has_each_host_and_its_tenants_in_its_events(ws):
    image = ws.pin()["release_pin"]["image"]
    job = run_job(ws, "deploy-production", "playbooks/deploy.yml", limit="production")
    assert_succeeded_on(job, PRODUCTION)
    for node in PRODUCTION:
        outcomes = {name: (t.get("outcome"), t.get("image")) for name, t in job.tenants(node).items()}
        assert outcomes == {name: ("created", image) for name in declared(node)}, f"{node}: {outcomes}"
    # The canary host (serial [1, 5]) is done before the next batch starts, and the events show it.
    done = {e["event_data"]["host"]: e["counter"] for e in job.named("runner_on_ok")
            if e["event_data"].get("task_action") == "pinned.release.tenant_rollout"}  # fmt: skip
    first_of_prod2 = min(e["counter"] for e in job.events if e.get("event_data", {}).get("host") == "prod2")
    assert done["prod1"] < first_of_prod2, "prod2 started before the canary prod1 was done"


def test_drift_through_runner_is_clean_per_host(ws):
    job = run_job(ws, "drift-clean", "playbooks/drift.yml", extravars={"remediate": False})
    assert (job.status, job.rc) == ("successful", 0), job.why() + diagnostics(PRODUCTION)
    assert sorted(job.results("pinned.release.verify_container")) == PRODUCTION, "not one drift check per host"
    assert job.results("pinned.release.tenant_rollout") == {}, "a drift check without remediate ran the transaction"
    for node in PRODUCTION:
        found = {name: (t.get("action"), t.get("drift")) for name, t in job.checked(node).items()}
        assert found == {name: ("none", []) for name in declared(node)}, f"{node}: {found}"


def test_drift_through_runner_fails_and_its_events_name_the_drifted_host(ws):
    node_sh("prod1", "docker stop openwebui-acme")
    job = run_job(ws, "drift-found", "playbooks/drift.yml", extravars={"remediate": False})
    assert (job.status, job.rc) == ("failed", 2), job.why()
    stats = job.stats()
    assert (stats["failures"], stats["dark"]) == ({"prod1": 1}, {}), stats
    assert sorted(job.results("pinned.release.verify_container")) == PRODUCTION, "not one drift check per host"
    prod1, prod2 = job.checked("prod1"), job.checked("prod2")
    assert {name: t.get("action") for name, t in prod1.items()} == dict.fromkeys(declared("prod1"), "none") | {
        "acme": "replace"
    }, prod1
    fields = {d["field"]: d["actual"] for d in prod1["acme"].get("drift", [])}
    assert fields.get("health", "").startswith("exited"), fields
    assert {name: t.get("action") for name, t in prod2.items()} == dict.fromkeys(declared("prod2"), "none"), prod2
    image = ws.pin()["release_pin"]["image"]
    failed = job.failed()
    assert [(host, task) for host, task, _msg in failed] == [("prod1", "Fail the hosts that drifted")], job.why()
    message = failed[0][2] or ""
    assert message.startswith(f"prod1 drifted from {image}: see "), message
    assert "\n" not in message.strip(), message
    assert "Traceback" not in job.stdout


def test_a_bad_input_fails_the_job_with_its_one_line_message_in_the_events(ws):
    """A rollback job template launched without its reason: refused before any host is touched."""
    before = {node: node_sh(node, "docker ps -q --no-trunc | sort").stdout for node in PRODUCTION}
    job = run_job(ws, "rollback-no-reason", "playbooks/rollback.yml", limit="production")
    assert (job.status, job.rc) == ("failed", 2), job.why()
    failed = job.failed()
    assert [(host, task) for host, task, _msg in failed] == [
        ("prod1", "Preflight | a reason is given and there is a target")
    ], job.why()
    message = failed[0][2] or ""
    assert message.startswith("a rollback needs a reason: "), message
    assert "\n" not in message.strip(), message
    assert "Traceback" not in job.stdout
    assert job.results("pinned.release.tenant_rollout") == {}, "a refused rollback reached a host"
    assert {node: node_sh(node, "docker ps -q --no-trunc | sort").stdout for node in PRODUCTION} == before
