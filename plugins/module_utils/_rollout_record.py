# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The journal of a tenant in transit: one typed record per tenant, with a schema version.

A record is written (atomically) before every step that changes anything, with the names the step is about to
create or rename to, so a re-run finds every container and folder a dead run made or moved. A record that is
not exactly this schema (a field unknown or missing, another version) is refused with its path and what to do:
guessing at a half-done move is how data gets lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import typing
from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._fs import fsync_dir
from ansible_collections.pinned.release.plugins.module_utils._journal import JournalError, read_json, write_json

SCHEMA = 2


@dataclass
class Previous:
    """The container that ran before the move: put back exactly, under the name it had."""

    id: str
    name: str
    image: str
    image_id: Optional[str]
    digest: Optional[str]
    running: bool


@dataclass
class NewContainer:
    name: str  # where it is created (<container>.pinned-next), known before it exists
    id: Optional[str] = None


@dataclass
class Restore:
    """A snapshot put in place of the data; both names are journaled before anything moves."""

    snapshot: str
    taken_epoch: Optional[float]
    exact: bool  # the data it replaces is what this move's own snapshot holds
    extracted: str  # data.restoring-<stamp>
    aside: str  # data.replaced-<stamp>


@dataclass
class Adopt:
    source: str  # the hand-started container's data folder (never touched)
    copy: str  # data.adopting
    aside: Optional[str]  # what was in the tenant's data folder, set aside (None: it was empty or absent)


@dataclass
class DataPutBack:
    """How the put-back brings the data from before the move back (journaled before it moves anything)."""

    failed_aside: Optional[str]  # where the data the new version ran on goes (None: it never ran)
    source: Optional[str]  # what becomes the data again (None: nothing, the folder was absent)
    source_is_copy: bool  # an extraction of a snapshot (a copy), not an original set aside
    extracted: bool = False  # the extraction is whole (journaled once it is)


@dataclass
class Writes:
    """Data a new version ran on, set aside by a put-back: users may have written there."""

    aside: str
    since: str
    since_epoch: float
    count: int
    files: list


@dataclass
class PutBack:
    done: list
    errors: list
    data: Optional[DataPutBack] = None


@dataclass
class MoveRecord:
    schema: int
    run_id: str
    tenant: str
    container: str
    tenant_dir: str
    port: int
    domain: str
    tls: bool
    target_image: str
    target_digest: str
    restart_policy: str  # the new container's, set at commit
    previous: Optional[Previous]
    new: NewContainer
    step: str = "create"
    reached: list = field(default_factory=list)
    attempt: int = 1
    started: bool = False
    started_epoch: Optional[float] = None
    site_switched: bool = False
    previous_site: Optional[str] = None
    snapshot: Optional[dict] = None
    restore: Optional[Restore] = None
    adopt: Optional[Adopt] = None
    put_back: Optional[PutBack] = None
    writes_aside: Optional[Writes] = None
    standing: Optional[str] = None
    reason: Optional[str] = None
    updated_epoch: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class RecordError(ValueError):
    """A journal record that is not of this schema."""


def _load(kind, value, where: str):
    if typing.get_origin(kind) is typing.Union:
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _load(inner, value, where)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise RecordError(f"{where} is not an object")
        hints = typing.get_type_hints(kind)
        names = [f.name for f in dataclasses.fields(kind)]
        unknown, missing = sorted(set(value) - set(names)), sorted(set(names) - set(value))
        if unknown or missing:
            words = [f"unknown field(s) {', '.join(unknown)}" if unknown else "",
                     f"missing field(s) {', '.join(missing)}" if missing else ""]  # fmt: skip
            raise RecordError(f"{where}: {'; '.join(w for w in words if w)}")
        return kind(**{name: _load(hints[name], value[name], f"{where}.{name}") for name in names})
    checks = {
        str: lambda v: isinstance(v, str),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        bool: lambda v: isinstance(v, bool),
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
    }
    if not checks[kind](value):
        raise RecordError(f"{where} must be a {kind.__name__}, got {type(value).__name__}")
    return float(value) if kind is float else value


def record_from(data: dict) -> MoveRecord:
    """The typed record of a journal's JSON, or RecordError naming the field at fault."""
    if data.get("schema") != SCHEMA:
        raise RecordError(
            f"its schema is {data.get('schema', 'absent (an earlier release)')!r}, this release reads {SCHEMA}"
        )
    return _load(MoveRecord, data, "record")


class MoveJournal:
    """One record per tenant in transit under ``<state_dir>/journal/<tenant>.json``."""

    def __init__(self, state_dir: str, clock: typing.Callable = time.time) -> None:
        self.directory = os.path.join(state_dir, "journal")
        self.clock = clock

    def path(self, tenant: str) -> str:
        return os.path.join(self.directory, f"{tenant}.json")

    def save(self, record: MoveRecord) -> None:
        record.updated_epoch = self.clock()
        write_json(self.path(record.tenant), record.to_dict())

    def _read(self, path: str) -> Optional[MoveRecord]:
        data = read_json(path, "journal")
        if data is None:
            return None
        try:
            return record_from(data)
        except RecordError as exc:
            raise JournalError(
                f"journal {path} cannot be read by this release ({exc}): re-run the release that wrote it to finish "
                "or undo that move, or check the tenant by hand and move the file away (docs/recovery.md)"
            ) from None

    def load(self, tenant: str) -> Optional[MoveRecord]:
        return self._read(self.path(tenant))

    def pending(self) -> dict:
        """{tenant: record} of every tenant a transaction left in transit."""
        records = {}
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return records
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                record = self._read(os.path.join(self.directory, name))
                if record is not None:
                    records[record.tenant] = record
        return records

    def done(self, tenant: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(tenant))
        fsync_dir(self.directory)


class Checkpoints:
    """Journal writes with the crash points of the tests around them: ``failpoint(label, tenant, "before"|"after")``.

    ``enter`` starts a step of the table (the record names it and what was reached); ``mark`` journals progress
    inside one (``restore.aside``): a crash between two changes is then a crash before the next journal write.
    """

    def __init__(self, journal: MoveJournal, failpoint: Optional[typing.Callable] = None) -> None:
        self.journal = journal
        self.failpoint = failpoint

    def _point(self, label: str, tenant: str, phase: str) -> None:
        if self.failpoint is not None:
            self.failpoint(label, tenant, phase)

    def mark(self, record: MoveRecord, label: str) -> None:
        self._point(label, record.tenant, "before")
        self.journal.save(record)
        self._point(label, record.tenant, "after")

    def enter(self, record: MoveRecord, step) -> None:
        record.step = step.value
        if step.value not in record.reached:
            record.reached.append(step.value)
        self.mark(record, step.value)
