# SPDX-License-Identifier: GPL-3.0-or-later
"""The drift_report action through a real ansible-playbook on the controller: it writes the three reports, a second
run of the same findings changes nothing, check mode writes nothing, and an inventory secret never reaches a file."""

from __future__ import annotations

import json

from tests.support.lab import run

SECRET = "inventory-secret-4242"
D1, D2 = ("sha256:" + c * 64 for c in "12")
ROW = {"field": "health", "expected": "running and healthy", "actual": f"exited/none: said {SECRET}"}
ACME = {"name": "openwebui-acme", "tenant": "acme", "status": "exited", "health": "none", "digest": D1,
        "files_changed": [], "drift": [ROW]}  # fmt: skip
RESULTS = {"prod1": {"containers": [ACME], "unexpected": []}, "prod2": None}
PLAYBOOK = """
- name: The drift report, three times
  hosts: prod1
  gather_facts: false
  tasks:
    - name: Check mode writes nothing
      pinned.release.drift_report: {results: "{{ results }}", pin: "{{ pin }}", dest: "{{ dest }}"}
      check_mode: true
      delegate_to: localhost
      register: checked
    - name: First
      pinned.release.drift_report: {results: "{{ results }}", pin: "{{ pin }}", dest: "{{ dest }}"}
      delegate_to: localhost
      register: first
    - name: Second
      pinned.release.drift_report: {results: "{{ results }}", pin: "{{ pin }}", dest: "{{ dest }}"}
      delegate_to: localhost
      register: second
    - name: Keep what each said
      ansible.builtin.copy:
        content: "{{ {'checked': checked, 'first': first, 'second': second} | to_json }}"
        dest: "{{ dest }}.results"
        mode: "0600"
      delegate_to: localhost
"""


def test_the_action_writes_once_masks_inventory_secrets_and_a_second_run_changes_nothing(tmp_path):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    inventory = {"all": {"hosts": {"prod1": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "release_tenants": [{"name": "acme", "domain": "a.example", "port": 3001, "secrets": {"KEY": SECRET}}],
    }}}}  # fmt: skip
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    dest = tmp_path / "drift"
    extra = json.dumps({"results": RESULTS, "dest": str(dest), "pin": f"repo@{D2}"})
    play = run(["ansible-playbook", "-i", str(tmp_path / "hosts.json"), str(tmp_path / "play.yml"), "-e", extra])
    assert play.returncode == 0, play.stdout[-3000:] + play.stderr[-2000:]
    said = json.loads((tmp_path / "drift.results").read_text())
    assert said["checked"]["changed"] is True
    assert said["checked"]["written"] == ["report.json", "report.md", "report.xml"]
    assert (said["first"]["changed"], said["first"]["written"]) == (True, ["report.json", "report.md", "report.xml"])
    assert (said["second"]["changed"], said["second"]["written"]) == (False, [])
    assert said["second"]["previously_drifted"] is True
    assert (
        said["first"]["lines"][0]
        == "prod1 openwebui-acme health: expected running and healthy, actual exited/none: said ********"
    )
    report = json.loads((dest / "report.json").read_text())
    assert report["hosts"]["prod2"]["checked"] is False
    assert report["generated_at"] == said["second"]["report"]["generated_at"]
    assert sorted(p.name for p in dest.iterdir()) == ["report.json", "report.md", "report.xml"], "a temporary file left"
    for path in dest.iterdir():
        assert SECRET not in path.read_text(), path
    assert SECRET not in json.dumps(said["first"])
