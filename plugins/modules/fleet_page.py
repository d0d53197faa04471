#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_page
short_description: Draw the fleet as one static HTML page - each host's tenants, digests, health, last deploy, drift
version_added: 0.2.0
description:
  - Records what a run saw of its hosts (the C(status) of each host's M(pinned.release.tenant_rollout) result, the host's
    failure, its drift rows) as C(hosts/<host>.json) next to O(path), then writes O(path) from every stored host, so a
    run that touches some hosts still shows the whole fleet (the others as last seen, with when).
  - "The page, per host and tenant - the app version its image declares (the app's C(version_label)) and the digest
    (short, with its tag), whether it is the pin (on a test host - O(test_hosts) - the candidate), health, time up or
    down, the last deploy (who, when, why, result, from the host's audit log), snapshot count and age, drift findings;
    and the pin with its age, the pin history and links to each digest's test evidence. Hosts with problems come first,
    then the test hosts; healthy hosts are folded."
  - One file, no script, no external asset - readable offline, in a browser or as an AWX artifact. Secret values of
    the play hosts' C(release_tenants) are masked.
  - It reports on a release and never fails one - a page that cannot be written is a warning. Never reports a change.
  - Runs on the controller (an action plugin).
author:
  - pinned.release maintainers (@pinned-release)
attributes:
  check_mode:
    support: full
    description: Writes nothing.
  diff_mode:
    support: none
    description: Nothing to compare.
  action:
    support: full
    description: Runs on the controller.
options:
  path:
    description: The HTML file to write; the host states go in C(hosts/) next to it.
    type: path
    required: true
  results:
    description: Each host's M(pinned.release.tenant_rollout) result (C(tenant_result)), null when there is none.
    type: dict
    default: {}
  failures:
    description: Why a host failed in this run (host - message), shown above its tenants.
    type: dict
    default: {}
  drift:
    description: The drift report of C(drift.yml) (C(hosts), C(rows)); the checked hosts' drift rows replace their old ones.
    type: dict
  pin_file:
    description: The pin file (C(release_pin_file)) - the pin and its history are read from it, whichever host runs this.
    type: path
    required: true
  evidence_dir:
    description: Where test evidence is (C(release_evidence_dir)), for the links.
    type: path
    default: ""
  test_hosts:
    description:
      - The hosts that run candidates - each is shown with the candidate it runs, and its tenants off the pin are not
        counted as off the pin or as a problem (a production host off the pin is one).
      - Default, the hosts of the inventory group C(test) that are not also in C(production).
    type: list
    elements: str
seealso:
  - module: pinned.release.tenant_rollout
"""

EXAMPLES = r"""
- name: Draw the fleet page
  pinned.release.fleet_page:
    path: "{{ release_state_dir }}/fleet/index.html"
    results: "{{ hostvars | pinned.release.host_facts(ansible_play_hosts_all, 'tenant_result') }}"
    pin_file: "{{ release_pin_file }}"
    evidence_dir: "{{ release_evidence_dir }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The page.
  returned: always
  type: str
hosts:
  description: The hosts on the page.
  returned: when written
  type: list
  elements: str
tenants:
  description: How many tenants the page shows.
  returned: when written
  type: int
"""
