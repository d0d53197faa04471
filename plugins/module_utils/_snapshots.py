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

A snapshot and its metadata are written atomically (``_fs.write_atomic``: a ``.tmp`` file renamed), so an archive
without ``.tmp`` is whole. A restore extracts into ``data.restoring-<stamp>`` and renames it to ``data`` only once complete,
so a crash never leaves half-restored data where the app would start on it. Owners (numeric), modes, times and
extended attributes (SELinux labels included) of every file and of the data folder itself are kept.

``data`` must be a real folder: a symbolic link to another disk would be archived as the link alone and restored
as a folder on this disk. Link the tenant folder instead; everything of the tenant then lives on that disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tarfile
import time
from typing import BinaryIO, Optional

from ansible_collections.pinned.release.plugins.module_utils._fs import fsync_dir, write_atomic
from ansible_collections.pinned.release.plugins.module_utils._journal import read_json, write_json

SNAPSHOT_SUFFIX = ".tar.gz"
MIN_KEEP = 2
ASIDE_KINDS = ("failed", "replaced")
# Free space asked beyond the data itself (tar headers, metadata, what a filesystem keeps for itself).
SPACE_MARGIN_BYTES = 1024 * 1024
XATTR_PAX = "SCHILY.xattr."  # how GNU tar and bsdtar store extended attributes: `tar --xattrs` restores them too


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


def _read_xattrs(path: str) -> dict:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    values = {}
    for name in names:
        with contextlib.suppress(OSError):
            values[XATTR_PAX + name] = os.getxattr(path, name, follow_symlinks=False).decode("utf-8", "surrogateescape")
    return values


def _apply_attributes(path: str, member: tarfile.TarInfo, root: bool) -> None:
    """Extended attributes of a member (and, for the data folder itself, its owner, mode and time)."""
    if root:
        with contextlib.suppress(PermissionError):
            os.chown(path, member.uid, member.gid)
        os.chmod(path, member.mode & 0o7777)
    for key, value in member.pax_headers.items():
        if key.startswith(XATTR_PAX):
            try:
                os.setxattr(
                    path, key[len(XATTR_PAX) :], value.encode("utf-8", "surrogateescape"), follow_symlinks=False
                )
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
    if root:
        os.utime(path, (member.mtime, member.mtime))


class TenantData:
    """The data, snapshots and asides of one tenant on this host."""

    def __init__(self, tenant: str, tenant_dir: str, excludes: tuple = ()) -> None:
        self.tenant = tenant
        self.dir = tenant_dir
        self.data_dir = os.path.join(tenant_dir, "data")
        self.snapshot_dir = os.path.join(tenant_dir, "snapshots")
        self.excludes = tuple(e.strip("/") for e in excludes if e and e.strip("/"))

    def data_problem(self) -> Optional[str]:
        """Why the data folder cannot be snapshotted and restored as it is, or None."""
        if os.path.islink(self.data_dir):
            return (f"its data folder {self.data_dir} is a symbolic link (to {os.readlink(self.data_dir)}): snapshots "
                    "would hold the link alone and a restore would land on this disk. Link the tenant folder "
                    f"{self.dir} instead (data, snapshots and set-aside copies then live together on that disk), or "
                    "set release_app.data_root to a folder on it")  # fmt: skip
        if os.path.lexists(self.data_dir) and not os.path.isdir(self.data_dir):
            return f"its data folder {self.data_dir} is not a folder: move it away, then re-run"
        if os.path.ismount(self.data_dir):
            return (f"its data folder {self.data_dir} is a mount point: a restore renames the data folder, which a mount "
                    f"point cannot be. Mount the tenant folder {self.dir} instead (data, snapshots and set-aside copies "
                    "then live together on that disk)")  # fmt: skip
        return None

    def new_path(self, kind: str, now: Optional[float] = None) -> str:
        """A name for a folder beside the data (``data.<kind>-<stamp>-<random>``), chosen before it is made, so it
        can be journaled first; it sorts by time."""
        return os.path.join(self.dir, f"data.{kind}-{stamp(now)}-{secrets.token_hex(2)}")

    # -------------------------------------------------------------- snapshots
    def take(self, meta: dict, now: Optional[float] = None) -> dict:
        """Archive the whole data folder (minus excludes); returns the metadata written next to it."""
        problem = self.data_problem()
        if problem:
            raise SnapshotError(f"{self.tenant}: {problem}")
        os.makedirs(self.snapshot_dir, mode=0o750, exist_ok=True)
        now = time.time() if now is None else now
        path = os.path.join(self.snapshot_dir, f"{stamp(now)}-{self.tenant}{SNAPSHOT_SUFFIX}")
        excludes = tuple(f"data/{e}" for e in self.excludes)
        data_bytes = 0

        def member(info: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
            nonlocal data_bytes
            # A named pipe or a device holds no data (a running app makes its own again): never archived.
            if _excluded(info.name, excludes) or info.isfifo() or info.ischr() or info.isblk():
                return None
            info.pax_headers.update(_read_xattrs(os.path.join(self.dir, info.name)))
            data_bytes += info.size
            return info

        def archive_into(raw: BinaryIO) -> None:
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1, format=tarfile.PAX_FORMAT) as archive:
                if os.path.isdir(self.data_dir):
                    archive.add(self.data_dir, arcname="data", filter=member)
                else:
                    info = tarfile.TarInfo("data")
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(now)
                    archive.addfile(info)

        try:
            write_atomic(path, archive_into, 0o600)
        except OSError as exc:
            raise SnapshotError(
                f"snapshot of {self.tenant}'s data to {self.snapshot_dir} failed: {exc.strerror or exc}"
            ) from exc
        record = dict(meta, tenant=self.tenant, snapshot=path, taken_at=iso(now), taken_epoch=now,
                      size=os.path.getsize(path), data_bytes=data_bytes, excludes=sorted(self.excludes))  # fmt: skip
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
        """Remove what an interrupted run left that no journal names: ``*.tmp`` archives, unplaced extractions."""
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
    def extract_into(self, snapshot: str, destination: str) -> None:
        """Extract a snapshot's data into ``destination`` (made here, removed again on any failure), with the owners,
        modes, times and extended attributes it was taken with, the data folder's own included."""
        shutil.rmtree(destination, ignore_errors=True)  # a partial extraction left by a crash
        os.makedirs(destination, mode=0o700)
        try:
            with tarfile.open(snapshot, "r:gz") as archive:
                root, members = _checked_members(archive, snapshot)
                kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
                archive.extractall(destination, members=members, numeric_owner=True, **kwargs)  # noqa: S202 - checked
                for member in members:
                    if any(key.startswith(XATTR_PAX) for key in member.pax_headers):
                        # a link's own attributes are best effort: most filesystems refuse user.* on links
                        with contextlib.suppress(*((OSError,) if member.issym() else ())):
                            _apply_attributes(os.path.join(destination, member.name), member, root=False)
                if root is not None:
                    _apply_attributes(destination, root, root=True)
        except (OSError, tarfile.TarError, EOFError) as exc:
            shutil.rmtree(destination, ignore_errors=True)
            reason = getattr(exc, "strerror", None) or str(exc)
            raise SnapshotError(f"restoring {snapshot} failed: {reason}") from exc

    def set_aside_to(self, aside: str, meta: dict, now: Optional[float] = None) -> None:
        """Move ``data`` to ``aside`` (a rename: nothing is copied or lost), then say what it holds beside it."""
        os.rename(self.data_dir, aside)
        fsync_dir(self.dir)
        kind = os.path.basename(aside)[len("data.") :].split("-", 1)[0]
        write_json(aside + ".json", dict(meta, kind=kind, path=aside, created_at=iso(now)), 0o600)

    def put_in_place(self, folder: str) -> None:
        """Make ``folder`` (a finished extraction, a copy or an aside) the data folder; ``data`` must not exist."""
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
                found.append({
                    "path": path,
                    "kind": kind,
                    "created_at": meta.get("created_at"),
                    "run_id": meta.get("run_id"),
                    "covered_by": self._covering(path, meta.get("covered_by")),
                })  # fmt: skip
        return sorted(found, key=lambda aside: os.path.basename(aside["path"]).split("-", 1)[-1])  # by time

    def _covering(self, aside: str, snapshot: Optional[str]) -> Optional[str]:
        """``snapshot`` when it exists and holds every byte of ``aside``: not when the aside has files under a path
        the snapshot left out (snapshot_exclude)."""
        if not snapshot or not os.path.exists(snapshot):
            return None
        try:
            excludes = (read_json(snapshot + ".json", "snapshot metadata") or {}).get("excludes") or []
        except OSError:
            return None
        if any(os.path.lexists(os.path.join(aside, e)) for e in excludes):
            return None
        return snapshot

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

    def writes_since(self, folder: str, since_epoch: float, limit: int = 50) -> tuple:
        """(count, first ``limit`` relative paths) of the files in ``folder`` modified after ``since_epoch``."""
        changed = []
        for root, _dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    if os.lstat(path).st_mtime > since_epoch:
                        changed.append(os.path.relpath(path, folder))
        return len(changed), sorted(changed)[:limit]


def _checked_members(archive: tarfile.TarFile, snapshot: str) -> tuple:
    """(the data folder's own member, the members under it renamed relative to it), or SnapshotError: only what
    this module writes is extracted - nothing outside data/, no device, no link out, nothing through a link."""
    root, members, links = None, [], []
    for member in archive.getmembers():
        name = member.name
        if not (name == "data" or name.startswith("data/")) or ".." in name.split("/"):
            raise SnapshotError(f"snapshot {snapshot} holds {name!r}, outside data/: not one of ours")
        if member.ischr() or member.isblk() or member.isfifo():
            raise SnapshotError(f"snapshot {snapshot} holds a device or pipe {name!r}: not one of ours")
        if name == "data":
            root = member
            continue
        relative = name[len("data/") :]
        if any(relative.startswith(link + "/") for link in links):
            raise SnapshotError(f"snapshot {snapshot} writes {name!r} through a symbolic link: not one of ours")
        if member.issym():
            links.append(relative)
        if member.islnk():
            target = member.linkname
            if not target.startswith("data/") or ".." in target.split("/"):
                raise SnapshotError(f"snapshot {snapshot} holds a hard link to {target!r}, outside data/")
            member.linkname = target[len("data/") :]
        member.name = relative
        members.append(member)
    return root, members
