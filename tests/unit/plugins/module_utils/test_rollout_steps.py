# SPDX-License-Identifier: GPL-3.0-or-later
"""The step table: each step named once, undone by put-back steps that exist, recovered in a way that fits it; the
journal record typed and refused when it is not exactly this schema; the recovery document holding the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.pinned.release.plugins.module_utils._journal import JournalError
from ansible_collections.pinned.release.plugins.module_utils._rollout_record import (
    SCHEMA,
    MoveJournal,
    MoveRecord,
    NewContainer,
    Previous,
    Restore,
)
from ansible_collections.pinned.release.plugins.module_utils._rollout_steps import (
    STEP_TABLE,
    Recovery,
    Step,
    Undo,
    rule_for,
    undo_plan,
)

ROOT = Path(__file__).resolve().parents[4]


def test_every_step_has_one_row_in_the_order_a_move_takes():
    assert [rule.step for rule in STEP_TABLE] == list(Step)


def test_a_step_that_changes_a_container_or_the_data_is_undone_or_recovered_forward():
    for rule in STEP_TABLE:
        forward_only = rule.if_interrupted in (Recovery.FINISH, Recovery.RESUME)
        assert rule.undone_by or forward_only or rule.step is Step.SNAPSHOT, rule.step


def test_what_a_rerun_does_follows_from_whether_the_new_version_may_have_run():
    started = {Step.START, Step.VERIFY, Step.RETRY}
    for rule in STEP_TABLE:
        if rule.step in started:
            assert rule.if_interrupted is Recovery.JUDGE, "it may have served users: judged, never blindly undone"
        elif rule.step is Step.CREATE:
            assert rule.if_interrupted is Recovery.DISCARD, "nothing was stopped yet"


@pytest.mark.parametrize(
    ("reached", "plan"),
    [
        (["create"], [Undo.REMOVE_NEW]),
        (["create", "stop", "snapshot"], [Undo.REMOVE_NEW, Undo.START_PREVIOUS]),
        (["create", "stop", "snapshot", "swap", "start", "verify"],
         [Undo.REMOVE_NEW, Undo.RESTORE_DATA, Undo.RESTORE_SITE, Undo.RENAME_PREVIOUS, Undo.START_PREVIOUS]),
        (["create", "stop", "adopt"], [Undo.REMOVE_NEW, Undo.RESTORE_DATA, Undo.START_PREVIOUS]),
    ],
)  # fmt: skip
def test_the_put_back_runs_the_undo_steps_of_what_was_reached_in_a_fixed_order(reached, plan):
    assert undo_plan(reached) == plan


def test_a_label_inside_a_step_is_recovered_as_that_step():
    assert rule_for("restore.aside").step is Step.RESTORE
    assert rule_for("putback.restore_data.placed").if_interrupted is Recovery.RESUME
    with pytest.raises(ValueError, match="'teleport' is not a valid Step"):
        rule_for("teleport")


def test_the_recovery_document_holds_the_table_as_the_code_has_it():
    check = subprocess.run([sys.executable, str(ROOT / "tools/recovery_table.py"), "--check"], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stderr


# ------------------------------------------------------------------ the typed journal


def record() -> MoveRecord:
    previous = Previous(id="c1", name="openwebui-acme", image="r@sha256:" + "1" * 64, image_id="sha256:x",
                        digest="sha256:" + "1" * 64, running=True)  # fmt: skip
    return MoveRecord(schema=SCHEMA, run_id="run-1", tenant="acme", container="openwebui-acme", tenant_dir="/opt/acme",
                      port=3001, domain="acme.example", tls=False, target_image="r@sha256:" + "2" * 64,
                      target_digest="sha256:" + "2" * 64, restart_policy="unless-stopped", previous=previous,
                      new=NewContainer(name="openwebui-acme.pinned-next"),
                      restore=Restore(snapshot="/s.tar.gz", taken_epoch=1.0, exact=True, extracted="/e", aside="/a"))  # fmt: skip


def test_a_record_is_read_back_as_it_was_written(tmp_path):
    journal = MoveJournal(str(tmp_path))
    written = record()
    journal.save(written)
    assert journal.load("acme") == written
    assert list(journal.pending()) == ["acme"]
    journal.done("acme")
    assert journal.pending() == {}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d.update(schema=1), "its schema is 1, this release reads 2"),
        (lambda d: d.pop("schema"), "its schema is 'absent (an earlier release)'"),
        (lambda d: d.update(surprise=True), "record: unknown field(s) surprise"),
        (lambda d: d.pop("started"), "record: missing field(s) started"),
        (lambda d: d["restore"].pop("aside"), "record.restore: missing field(s) aside"),
        (lambda d: d.update(port="3001"), "record.port must be a int, got str"),
        (lambda d: d["previous"].update(running="yes"), "record.previous.running must be a bool"),
    ],
)
def test_a_record_that_is_not_exactly_this_schema_is_refused_with_its_path_and_what_to_do(tmp_path, change, why):
    journal = MoveJournal(str(tmp_path))
    journal.save(record())
    data = json.loads(Path(journal.path("acme")).read_text())
    change(data)
    Path(journal.path("acme")).write_text(json.dumps(data))
    with pytest.raises(JournalError) as refused:
        journal.pending()
    message = str(refused.value)
    assert message.startswith(f"journal {journal.path('acme')} cannot be read by this release")
    assert why in message
    assert "re-run the release that wrote it" in message
