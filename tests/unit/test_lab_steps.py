# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo's reading of ansible-playbook output (the yaml result format, long lines folded)."""

from __future__ import annotations

from lab.steps import lines_with

DRIFT_OUTPUT = """\
TASK [Drift found (host, container, field, expected, actual)] ******************
ok: [prod1] =>
  msg:
  - 'prod2 openwebui-globex env.WEBUI_SECRET_KEY: expected ********, actual missing'
  - 'prod2 openwebui-globex labels.pinned.release.managed: expected true, actual
    None'

TASK [Tell people about drift found or cleared since the last check, and redraw the fleet page] ***
included: /work/main/roles/notify/tasks/main.yml for prod1

TASK [pinned.release.notify : Send the notification - drift] ******************
ok: [prod1]
"""


def test_each_line_is_one_list_item_and_the_next_task_header_is_not_part_of_it():
    assert lines_with(DRIFT_OUTPUT, "prod2 openwebui-globex") == [
        "prod2 openwebui-globex env.WEBUI_SECRET_KEY: expected ********, actual missing",
        "prod2 openwebui-globex labels.pinned.release.managed: expected true, actual None",
    ]


def test_a_marker_found_nowhere_gives_nothing():
    assert lines_with(DRIFT_OUTPUT, "initech") == []
