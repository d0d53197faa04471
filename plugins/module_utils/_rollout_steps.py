# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The steps of one tenant's move, each named once: what it does, what undoes it, and what a re-run does when the
journal says the process died during it.

The transaction (``_rollout``), its put-back, its recovery, the crash points of the tests and the table in
``docs/recovery.md`` all read ``STEP_TABLE``: a new step is one row here.

A step's journal record is written *before* the step changes anything (its intent: the names it will create or
rename to), so "died during step S" covers "died before S changed anything" and "died after S was done".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Step(str, Enum):
    CREATE = "create"
    STOP = "stop"
    ADOPT = "adopt"
    SNAPSHOT = "snapshot"
    RESTORE = "restore"
    SWAP = "swap"
    START = "start"
    VERIFY = "verify"
    RETRY = "retry"
    COMMIT = "commit"
    PUT_BACK = "putback"


class Undo(str, Enum):
    """The put-back's own steps, in the order they run (each runs even when an earlier one failed)."""

    REMOVE_NEW = "remove_new"
    RESTORE_DATA = "restore_data"
    RESTORE_SITE = "restore_site"
    RENAME_PREVIOUS = "rename_previous"
    START_PREVIOUS = "start_previous"


class Recovery(str, Enum):
    DISCARD = "discard"  # nothing was stopped: remove what was made, the tenant never left its container
    PUT_BACK = "put back"  # undo every step reached
    JUDGE = "judge"  # the new version may have served users: ready and passing its checks now -> commit; else put back
    FINISH = "finish"  # finish the commit
    RESUME = "resume"  # go on with the put-back where it stopped


@dataclass(frozen=True)
class StepRule:
    step: Step
    does: str
    undone_by: tuple
    if_interrupted: Recovery


STEP_TABLE = (
    StepRule(
        Step.CREATE,
        "the new container is created as `NAME.pinned-next`, with no restart policy; nothing stops",
        (Undo.REMOVE_NEW,),
        Recovery.DISCARD,
    ),
    StepRule(
        Step.STOP,
        "the running container is stopped (kept: it is the exact previous image and configuration)",
        (Undo.START_PREVIOUS,),
        Recovery.PUT_BACK,
    ),
    StepRule(
        Step.ADOPT,
        "a hand-started container's data is copied into the tenant's data folder (the original is never touched); "
        "what was in that folder is set aside",
        (Undo.RESTORE_DATA,),
        Recovery.PUT_BACK,
    ),
    StepRule(Step.SNAPSHOT, "the whole data folder is archived (written to .tmp, then renamed)", (), Recovery.PUT_BACK),
    StepRule(
        Step.RESTORE,
        "a snapshot is extracted beside the data, the data set aside, the extraction renamed into its place",
        (Undo.RESTORE_DATA,),
        Recovery.PUT_BACK,
    ),
    StepRule(
        Step.SWAP,
        "the old container is renamed `NAME.pinned-prev`, the new one `NAME`",
        (Undo.RENAME_PREVIOUS, Undo.REMOVE_NEW),
        Recovery.PUT_BACK,
    ),
    StepRule(
        Step.START,
        "the new container is started (from here it may change the data and serve users)",
        (Undo.REMOVE_NEW, Undo.RESTORE_DATA),
        Recovery.JUDGE,
    ),
    StepRule(
        Step.VERIFY,
        "health gate (fails fast), the nginx site switched to it, smoke checks through nginx",
        (Undo.RESTORE_SITE,),
        Recovery.JUDGE,
    ),
    StepRule(
        Step.RETRY,
        "(data_mode auto) the new container is removed, the data from before the tenant left the target restored, "
        "the container created again and started",
        (Undo.REMOVE_NEW, Undo.RESTORE_DATA),
        Recovery.JUDGE,
    ),
    StepRule(
        Step.COMMIT,
        "the restart policy set, the old container removed, env files written, snapshots rotated",
        (),
        Recovery.FINISH,
    ),
    StepRule(Step.PUT_BACK, "the put-back runs, each of its steps recorded as done", (), Recovery.RESUME),
)

RULES = {rule.step: rule for rule in STEP_TABLE}


def rule_for(label: str) -> StepRule:
    """The rule of a journal label: a step (``start``) or a point inside one (``restore.aside``, ``putback.remove_new``)."""
    return RULES[Step(label.split(".", 1)[0])]


def undo_plan(reached: list) -> list:
    """The put-back steps that undo the steps ``reached``, in the order they run."""
    needed = {undo for step in reached for undo in RULES[Step(step)].undone_by}
    return [undo for undo in Undo if undo in needed]


def markdown_table() -> str:
    """The table for docs/recovery.md (a test checks the document holds it)."""
    lines = ["| step | what it does | undone by | a re-run after a crash here |", "|---|---|---|---|"]
    for rule in STEP_TABLE:
        undone = ", ".join(u.value for u in rule.undone_by) or "-"
        lines.append(f"| `{rule.step.value}` | {rule.does} | {undone} | {RECOVERY_WORDS[rule.if_interrupted]} |")
    return "\n".join(lines) + "\n"


RECOVERY_WORDS = {
    Recovery.DISCARD: "removes what was made; the tenant never stopped",
    Recovery.PUT_BACK: "puts the tenant back",
    Recovery.JUDGE: "judges the new version now (readiness and smoke checks): passing, it is committed with the "
    "writes made since; failing, the tenant is put back and those writes set aside and named",
    Recovery.FINISH: "finishes the commit",
    Recovery.RESUME: "goes on with the put-back where it stopped",
}
