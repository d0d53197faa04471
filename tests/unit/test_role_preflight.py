# SPDX-License-Identifier: GPL-3.0-or-later
"""The promote and adopt roles refuse bad input in their preflight, before anything is read or written: one line
naming the variable (or file) at fault and what to do, through a real ansible-playbook run on the controller (no lab
node: the preflight runs before any host is reached)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.lab import ROOT

PLAY = """- hosts: localhost
  gather_facts: false
  vars:
    release_app_repository: 127.0.0.1:5000/pinned/open-webui
    release_inventory_dir: {inventory}
    release_state_dir: {inventory}/.release_state
    release_evidence_dir: {inventory}/.release_state/evidence
    release_pin_file: {inventory}/group_vars/production/release_pin.yml
  roles:
    - role: pinned.release.{role}
"""


def failures(role: str, tmp_path, *extra: str) -> list:
    """The message of the task that failed (each failed item's, for a loop), each one line."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars/production").mkdir(parents=True)
    (inventory / ".release_state/evidence").mkdir(parents=True, exist_ok=True)
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY.format(inventory=inventory, role=role))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1")  # fmt: skip
    run = subprocess.run(["ansible-playbook", str(playbook), *extra], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=False, timeout=120)  # fmt: skip
    assert run.returncode != 0, run.stdout[-2000:]
    assert "Traceback" not in run.stdout + run.stderr
    results = [host for play in json.loads(run.stdout)["plays"] for task in play["tasks"]
               for host in task["hosts"].values() if host.get("failed")]  # fmt: skip
    messages = [item["msg"] for r in results for item in (r.get("results") or [r]) if item.get("failed")]
    assert messages, run.stdout[-2000:]
    assert all("\n" not in m.strip() for m in messages), messages
    assert sorted(p.name for p in (inventory / "group_vars/production").iterdir()) == [], "a refused promote wrote"
    assert not (inventory / "host_vars").exists(), "a refused adoption wrote"
    return messages


@pytest.mark.parametrize(
    ("extra", "candidate", "message"),
    [
        ((), None, "nothing tested yet ({evidence}/candidate.json is missing): run ansible-playbook playbooks/deploy.yml -l test"),
        (("-e", "promote_git_commit=true"), json.dumps({"repository": "r", "tag": "t", "digest": "sha256:" + "a" * 64,
                                                        "evidence": "/e.json", "finished_at": "now"}),
         "promote_git_commit: {inventory}/group_vars/production is not in a git work tree (fatal: not a git repository"),
    ],
)  # fmt: skip
def test_promote_preflight(tmp_path, extra, candidate, message):
    evidence = tmp_path / "inventory/.release_state/evidence"
    if candidate is not None:
        evidence.mkdir(parents=True)
        (evidence / "candidate.json").write_text(candidate)
    (found,) = failures("promote", tmp_path, *extra)
    assert found.startswith(message.format(evidence=evidence, inventory=tmp_path / "inventory")), found


def test_adopt_preflight_names_each_bad_variable(tmp_path):
    bad = {"adopt_existing": "overwrite", "adopt_container_port": 70000, "adopt_data_path": "data",
           "release_app_repository": ""}  # fmt: skip
    assert failures("adopt", tmp_path, "-e", json.dumps(bad)) == [
        "adopt_existing must be refuse or merge, got overwrite",
        "adopt_repository is empty: set release_app_repository to the app's image repository",
        "adopt_container_port must be a port number (1-65535), got 70000",
        "adopt_data_path must be an absolute path inside the container, got data",
    ]
