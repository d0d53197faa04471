# Copyright (c) pinned.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A tenant's data snapshots and set-aside data folders, on the host.

Layout under a tenant folder (``<data_root>/<tenant>``)::

    data/                              what the container mounts
    snapshots/<stamp>-<tenant>.tar.gz  the whole data folder (SQLite's -wal files included), mode 0600
    snapshots/<stamp>-<tenant>.tar.gz.json   what it was taken for: from/to digest and image, run, reason
    data.failed-<stamp>/               data a failed new version ran on (put back from a snapshot)
    data.replaced-<stamp>/             data replaced by a restore (a rollback across a migration)
    data.<kind>-<stamp>.json           what an aside holds, and which snapshot has the same bytes

A snapshot is written to ``.tmp`` and renamed, its metadata atomically, so an archive without ``.tmp`` is
whole. A restore extracts into ``data.restoring-<stamp>`` and renames it to ``data`` only once complete,
so a crash never leaves half-restored data where the app would start on it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import time
from typing import Optional

from ansible_collections.pinned.release.plugins.module_utils._journal import (
    fsync_dir,
    read_json,
    write_json,
)

SNAPSHOT_SUFFIX = ".tar.gz"
MIN_KEEP = 2
ASIDE_KINDS = ("failed", "replaced")
# Free space asked beyond the data itself (tar headers, metadata, what a filesystem keeps for itself).
SPACE_MARGIN_BYTES = 1024 * 1024


class SnapshotError(OSError):
    """A snapshot cannot be taken or restored; the message names it and what to do."""


def stamp(now: Optional[float] = None) -> str:
    """``20261125T173000.123Z``: sorts by time, unique per millisecond."""
    now = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def iso(now: Optional[float] = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _excluded(relative: str, excludes: tuple) -> bool:
    return any(relative == e or relative.startswith(e.rstrip("/") + "/") for e in excludes)


def data_size(data_dir: str, excludes: tuple = ()) -> int:
    """Bytes in ``data_dir``, without the excluded sub-paths (relative to it)."""
    total = 0
    for root, dirs, files in os.walk(data_dir):
        relative_root = os.path.relpath(root, data_dir)
        relative_root = "" if relative_root == "." else relative_root
        dirs[:] = [d for d in dirs if not _excluded(os.path.join(relative_root, d), excludes)]
        for name in files:
            if _excluded(os.path.join(relative_root, name), excludes):
                continue
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def free_bytes(path: str) -> int:
    while not os.path.exists(path):
        path = os.path.dirname(path) or "/"
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


class TenantData:
    """The data, snapshots and asides of one tenant on this host."""

    def __init__(self, tenant: str, tenant_dir: str, excludes: tuple = ()) -> None:
        self.tenant = tenant
        self.dir = tenant_dir
        self.data_dir = os.path.join(tenant_dir, "data")
        self.snapshot_dir = os.path.join(tenant_dir, "snapshots")
        self.excludes = tuple(e.strip("/") for e in excludes if e and e.strip("/"))

    # -------------------------------------------------------------- snapshots
    def take(self, meta: dict, now: Optional[float] = None) -> dict:
        """Archive the whole data folder (minus excludes); returns the metadata written next to it."""
        os.makedirs(self.snapshot_dir, mode=0o750, exist_ok=True)
        now = time.time() if now is None else now
        path = os.path.join(self.snapshot_dir, f"{stamp(now)}-{self.tenant}{SNAPSHOT_SUFFIX}")
        temp = path + ".tmp"
        excludes = {f"data/{e}" for e in self.excludes}

        def skip(info):
            return None if _excluded(info.name, tuple(excludes)) else info

        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as archive:
                    if os.path.isdir(self.data_dir):
                        archive.add(self.data_dir, arcname="data", filter=skip)
                    else:
                        info = tarfile.TarInfo("data")
                        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(now)
                        archive.addfile(info)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(temp, path)
            fsync_dir(self.snapshot_dir)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise SnapshotError(
                f"snapshot of {self.tenant}'s data to {self.snapshot_dir} failed: {exc.strerror or exc}"
            ) from exc
        record = dict(meta, tenant=self.tenant, snapshot=path, taken_at=iso(now), taken_epoch=now,
                      size=os.path.getsize(path), excludes=sorted(self.excludes))  # fmt: skip
        write_json(path + ".json", record, 0o600)
        return record

    def snapshots(self) -> list:
        """Metadata of every whole snapshot (archive present), oldest first."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.snapshot_dir):
                if not name.endswith(SNAPSHOT_SUFFIX + ".json"):
                    continue
                try:
                    meta = read_json(os.path.join(self.snapshot_dir, name), "snapshot metadata")
                except OSError:
                    continue
                if meta and os.path.exists(meta.get("snapshot", "")):
                    found.append(meta)
        return sorted(found, key=lambda m: (m.get("taken_epoch") or 0, m.get("snapshot")))

    def rotate(self, keep: int, protect_digests: tuple = (), protect_paths: tuple = ()) -> list:
        """Delete snapshots beyond the newest ``keep`` (at least MIN_KEEP), never a protected one.

        Protected: for each digest D in ``protect_digests``, the newest snapshot taken before moving to D
        from another digest (the data a rollback from D needs), and every path in ``protect_paths``.
        """
        keep = max(keep, MIN_KEEP)
        metas = self.snapshots()
        protected = set(protect_paths)
        for digest in protect_digests:
            upgrades = [m for m in metas if m.get("to_digest") == digest and m.get("from_digest") not in (None, digest)]
            if upgrades:
                protected.add(upgrades[-1]["snapshot"])
        newest = {m["snapshot"] for m in metas[-keep:]}
        removed = []
        for meta in metas:
            if meta["snapshot"] in newest or meta["snapshot"] in protected:
                continue
            for path in (meta["snapshot"], meta["snapshot"] + ".json"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            removed.append(meta["snapshot"])
        return removed

    def rollback_snapshot(self, target_digest: str) -> Optional[dict]:
        """The data as it was when this tenant was last moved away from ``target_digest`` (None if none)."""
        away = [
            m for m in self.snapshots() if m.get("from_digest") == target_digest and m.get("to_digest") != target_digest
        ]
        return away[-1] if away else None

    def clean_temporaries(self) -> list:
        """Remove what an interrupted run left: ``*.tmp`` archives and unfinished restores."""
        removed = []
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.snapshot_dir):
                if name.endswith(".tmp"):
                    os.unlink(os.path.join(self.snapshot_dir, name))
                    removed.append(os.path.join(self.snapshot_dir, name))
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.dir):
                if name.startswith("data.restoring-"):
                    shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)
                    removed.append(os.path.join(self.dir, name))
        return removed

    # -------------------------------------------------------------- restore and asides
    def extract(self, snapshot: str, now: Optional[float] = None) -> str:
        """Extract a snapshot's data into a new ``data.restoring-<stamp>`` folder; returns it."""
        destination = os.path.join(self.dir, f"data.restoring-{stamp(now)}")
        os.makedirs(destination, mode=0o755)
        try:
            with tarfile.open(snapshot, "r:gz") as archive:
                members = []
                for member in archive.getmembers():
                    name = member.name
                    if not (name == "data" or name.startswith("data/")) or ".." in name.split("/"):
                        raise SnapshotError(f"snapshot {snapshot} holds {name!r}, outside data/: not one of ours")
                    if member.issym() or member.islnk():
                        target = member.linkname
                        if os.path.isabs(target) and member.islnk():
                            raise SnapshotError(f"snapshot {snapshot} holds a hard link to {target!r}")
                    if name == "data":
                        continue
                    member.name = name[len("data/") :]
                    if member.islnk():
                        member.linkname = member.linkname[len("data/") :]
                    members.append(member)
                kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
                archive.extractall(destination, members=members, **kwargs)  # noqa: S202 - members checked above
        except (OSError, tarfile.TarError, EOFError) as exc:
            shutil.rmtree(destination, ignore_errors=True)
            reason = getattr(exc, "strerror", None) or str(exc)
            raise SnapshotError(f"restoring {snapshot} failed: {reason}") from exc
        return destination

    def set_aside(self, kind: str, meta: dict, now: Optional[float] = None) -> str:
        """Move ``data`` to ``data.<kind>-<stamp>`` (a rename: nothing is copied or lost); returns it."""
        aside = os.path.join(self.dir, f"data.{kind}-{stamp(now)}")
        os.rename(self.data_dir, aside)
        write_json(aside + ".json", dict(meta, kind=kind, path=aside, created_at=iso(now)), 0o600)
        fsync_dir(self.dir)
        return aside

    def put_in_place(self, folder: str) -> None:
        """Make ``folder`` (a finished extraction or an aside) the data folder; ``data`` must not exist."""
        os.rename(folder, self.data_dir)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder + ".json")
        fsync_dir(self.dir)

    def asides(self) -> list:
        """Every set-aside data folder: path, kind, created_at, covered_by (a snapshot with the same bytes)."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.dir):
                kind = name[len("data.") :].split("-", 1)[0] if name.startswith("data.") else ""
                path = os.path.join(self.dir, name)
                if kind not in ASIDE_KINDS or not os.path.isdir(path):
                    continue
                meta = {}
                with contextlib.suppress(OSError):
                    meta = read_json(path + ".json", "aside metadata") or {}
                covered = meta.get("covered_by")
                found.append({
                    "path": path,
                    "kind": kind,
                    "created_at": meta.get("created_at"),
                    "run_id": meta.get("run_id"),
                    "covered_by": covered if covered and os.path.exists(covered) else None,
                })  # fmt: skip
        return sorted(found, key=lambda aside: os.path.basename(aside["path"]).split("-", 1)[-1])  # by time

    def bound_asides(self, keep: int) -> tuple:
        """Keep at most ``keep`` asides: older ones whose bytes a snapshot holds are deleted.

        Returns (removed paths, uncovered asides beyond the bound): those hold the only copy of writes
        and are never deleted here; the caller reports them.
        """
        asides = self.asides()
        excess = asides[: max(0, len(asides) - keep)]
        removed, kept_only_copy = [], []
        for aside in excess:
            if aside["covered_by"]:
                shutil.rmtree(aside["path"], ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(aside["path"] + ".json")
                removed.append(aside["path"])
            else:
                kept_only_copy.append(aside)
        return removed, kept_only_copy

    def writes_since(self, folder: str, since_epoch: float, limit: int = 50) -> list:
        """Files in ``folder`` modified after ``since_epoch`` (what a restore leaves out), relative paths."""
        changed = []
        for root, _dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    if os.lstat(path).st_mtime > since_epoch:
                        changed.append(os.path.relpath(path, folder))
        return sorted(changed)[:limit]
