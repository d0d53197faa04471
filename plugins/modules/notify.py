#!/usr/bin/python
# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: notify
short_description: Tell webhooks, Slack and e-mail about a release event, without ever failing the release
version_added: 0.2.0
description:
  - Builds one message from the structured result of a release step (a tested candidate, a pin change, a rollout,
    a rollback, a drift check) and sends it to every configured target that wants that event.
  - "Targets: C(webhook) (the message as JSON - C(event), C(status) (C(ok), C(failed) or C(warning)), C(title),
    C(text), C(operator), C(at)), C(slack) (a Slack-compatible incoming webhook, C({\"text\": ...})) and C(email)
    (sent with M(community.general.mail), which must be installed - it is part of the C(ansible) package)."
  - Never fails and never reports a change. An unreachable target, an error answer, a malformed target entry or a
    refusing SMTP server each give one warning line and the release goes on. Webhooks are posted side by side,
    each within O(timeout) seconds.
  - The message is masked against every secret value of the inventory (the play hosts' C(release_tenants) secrets,
    C(release_registry), C(release_checklist_variables), and the targets' own URLs and passwords).
  - A rollout in waves is told after its last wave and after a wave that lost a host (failed, or dropped by
    Ansible); a wave that went well in between sends nothing (RV(due) is false).
  - Runs on the controller (an action plugin); the C(notify) role calls it once per event.
author:
  - pinned.release maintainers (@pinned-release)
attributes:
  check_mode:
    support: full
    description: Sends nothing; returns the message and the targets that would get it.
  diff_mode:
    support: none
    description: Nothing to compare.
  action:
    support: full
    description: Runs on the controller; e-mail goes through M(community.general.mail).
options:
  event:
    description: What happened.
    type: str
    required: true
    choices: [candidate_tested, pin_changed, rollout, rollback, drift]
  facts:
    description:
      - "The step's result - C(candidate_tested): the evidence record (C(image), C(digest), C(passed), C(hosts),
        C(evidence)); C(pin_changed): the M(pinned.release.pin_digest) result (C(previous), C(current));
        C(rollout): C(image), C(hosts) (each host's C(tenant_result), null when not reached), C(failures)
        (host - why), and for a rollout in waves C(waves) (the hosts of each wave), C(batch) (the wave that has just
        run), C(dropped) (hosts Ansible dropped) and C(budget) (the failure budget); C(rollback): C(target),
        C(reason), C(summary), C(failed_hosts); C(drift): C(report) (the drift report) and C(report_path)."
    type: dict
    default: {}
  targets:
    description:
      - "Where to send (C(release_notify_targets)). Each - C(name), C(type) (C(webhook), C(slack), C(email)),
        C(events) (default all). Webhook and Slack - C(url), C(headers). E-mail - C(to) (addresses), C(host),
        C(port) (25), C(sender), C(username), C(password), C(secure) (C(try), C(always), C(never), C(starttls))."
      - A malformed entry is skipped with a warning that names it.
    type: list
    elements: raw
    default: []
  timeout:
    description: Seconds each target may take.
    type: int
    default: 5
seealso:
  - module: community.general.mail
"""

EXAMPLES = r"""
- name: Tell people how the rollout went
  pinned.release.notify:
    event: rollout
    facts:
      image: "{{ release_pin.image }}"
      hosts: "{{ hostvars | pinned.release.host_facts(ansible_play_hosts_all, 'tenant_result') }}"
    targets:
      - name: ops
        type: slack
        url: "{{ vault_slack_webhook_url }}"
      - name: oncall
        type: email
        to: [oncall@example.com]
        host: smtp.example.com
        events: [rollout, rollback]
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
due:
  description: Whether the event is told now (false for a rollout wave that went well before the last one).
  returned: always
  type: bool
message:
  description: The message as sent (C(event), C(status), C(title), C(text), C(operator), C(at)); secrets masked.
  returned: always
  type: dict
sent:
  description: Names of the targets that took the message.
  returned: always
  type: list
  elements: str
not_sent:
  description: C(target) and C(why) for each target that did not (also a warning each).
  returned: always
  type: list
  elements: dict
would_send:
  description: In check mode, the targets that would get the message.
  returned: in check mode
  type: list
  elements: str
"""
