#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: drift_report
short_description: Build the fleet drift report from each host's check and write it as JSON, Markdown and JUnit XML
version_added: 0.3.0
description:
  - Builds one report from each host's M(pinned.release.verify_container) result for its tenants - one row per
    difference (host, container, field, expected, actual) - digest, health, env (secret values masked), labels, ports,
    mounts, restart policy, env files, nginx sites, isolation, certificates, managed containers no tenant declares,
    and transactions a crash left unfinished; a host without a result (unreachable, failed) is a row too.
  - Writes C(report.json), C(report.md) and C(report.xml) (one JUnit test case per host and container) into O(dest),
    each atomically and only when its content changes. A report that finds what the previous one found keeps its
    C(generated_at), so a second check of an unchanged fleet writes nothing and reports no change.
  - Secret values of the play hosts' C(release_tenants) are masked in everything it writes and returns.
  - Runs on the controller (an action plugin). The C(drift) role calls it once per play.
author:
  - pinned.release maintainers (@pinned-release)
attributes:
  check_mode:
    support: full
    description: Builds and returns the report, says which files would change, writes nothing.
  diff_mode:
    support: full
    description: Shows each report file that changes.
  action:
    support: full
    description: Runs on the controller.
options:
  results:
    description: Each host's M(pinned.release.verify_container) result (host - result, null when the host has none).
    type: dict
    required: true
  pin:
    description: The pinned image the fleet is checked against (C(release_pin.image)).
    type: str
    required: true
  dest:
    description: The folder of the report files (created when missing).
    type: path
    required: true
seealso:
  - module: pinned.release.verify_container
"""

EXAMPLES = r"""
- name: Build and write the fleet report
  pinned.release.drift_report:
    results: "{{ hostvars | pinned.release.host_facts(ansible_play_hosts_all, 'drift_check') }}"
    pin: "{{ release_pin.image }}"
    dest: "{{ release_state_dir }}/drift"
  run_once: true
  delegate_to: localhost
  register: drift_report
"""

RETURN = r"""
report:
  description: C(pin), C(drifted), C(hosts) (per host - checked, drifted, tenants or error), C(rows), C(containers)
    (per host - name, status, health, digest), C(generated_at).
  returned: always
  type: dict
lines:
  description: "One line per row, C(<host> <container> <field>: expected <x>, actual <y>), for the console."
  returned: always
  type: list
  elements: str
written:
  description: The report files that changed (in check mode, that would change).
  returned: always
  type: list
  elements: str
previously_drifted:
  description: Whether the report found in O(dest) before this run said the fleet drifted (to tell people it cleared).
  returned: always
  type: bool
"""
