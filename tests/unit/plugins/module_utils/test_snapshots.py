# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshots of a tenant's data: whole, excluding caches, restorable only whole, rotated without losing the rollback point."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from ansible_collections.pinned.release.plugins.module_utils._snapshots import (
    SnapshotError,
    TenantData,
    data_size,
    human,
    stamp,
)

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


@pytest.fixture
def tenant(tmp_path):
    data = tmp_path / "acme" / "data"
    (data / "cache").mkdir(parents=True)
    (data / "webui.db").write_text("db")
    (data / "webui.db-wal").write_text("rows only in the WAL")
    (data / "cache" / "big.bin").write_bytes(b"x" * 4096)
    return TenantData("acme", str(tmp_path / "acme"), ("cache",))


def test_a_snapshot_holds_the_whole_data_folder_without_the_excludes(tenant):
    meta = tenant.take({"from_digest": D1, "to_digest": D2}, now=1000.0)
    with tarfile.open(meta["snapshot"]) as archive:
        names = archive.getnames()
    assert "data/webui.db-wal" in names, "SQLite keeps rows in -wal: the folder goes whole"
    assert not any(n.startswith("data/cache") for n in names)
    assert oct(Path(meta["snapshot"]).stat().st_mode & 0o777) == "0o600"
    assert tenant.snapshots()[0]["to_digest"] == D2
    assert data_size(tenant.data_dir, ("cache",)) == len("db") + len("rows only in the WAL")


def restore(tenant: TenantData, snapshot: str, now: float = 1001.0) -> str:
    """extract beside, set the data aside, put the extraction in place: the transaction's restore; the aside."""
    restored, aside = tenant.new_path("restoring", now), tenant.new_path("replaced", now)
    tenant.extract_into(snapshot, restored)
    tenant.set_aside_to(aside, {"covered_by": None}, now=now)
    tenant.put_in_place(restored)
    return aside


def test_extract_then_put_in_place_restores_exactly(tenant):
    meta = tenant.take({}, now=1000.0)
    (Path(tenant.data_dir) / "webui.db").write_text("changed")
    aside = restore(tenant, meta["snapshot"])
    assert (Path(tenant.data_dir) / "webui.db").read_text() == "db"
    assert (Path(aside) / "webui.db").read_text() == "changed", "the replaced data is kept aside"
    assert [a["kind"] for a in tenant.asides()] == ["replaced"]
    assert meta["data_bytes"] == len("db") + len("rows only in the WAL")


def test_a_restore_keeps_owner_mode_times_and_extended_attributes_of_the_data_folder_and_its_files(tenant):
    data = Path(tenant.data_dir)
    os.chown(data, 1000, 1001)
    os.chmod(data, 0o770)  # noqa: S103 - the app's group writes there
    os.chown(data / "webui.db", 1000, 1001)
    os.chmod(data / "webui.db", 0o640)
    os.setxattr(data, "user.label", b"tenant-root")
    os.setxattr(data / "webui.db", "user.label", b"\x00binary\xff")
    os.utime(data, (5000, 5000))
    meta = tenant.take({}, now=6000.0)
    restore(tenant, meta["snapshot"])
    root, db = data.stat(), (data / "webui.db").stat()
    assert (root.st_uid, root.st_gid, oct(root.st_mode & 0o7777)) == (1000, 1001, "0o770"), "a non-root app can write"
    assert (db.st_uid, db.st_gid, oct(db.st_mode & 0o7777)) == (1000, 1001, "0o640")
    assert root.st_mtime == 5000
    assert os.getxattr(data, "user.label") == b"tenant-root"
    assert os.getxattr(data / "webui.db", "user.label") == b"\x00binary\xff"


def test_a_data_folder_that_is_a_symbolic_link_is_refused_before_it_is_snapshotted(tmp_path):
    bigger = tmp_path / "bigdisk" / "acme"
    (bigger / "kv").mkdir(parents=True)
    (bigger / "kv" / "sentinel").write_text("on the bigger disk")
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "data").symlink_to(bigger)
    tenant = TenantData("acme", str(tmp_path / "acme"))
    assert "is a symbolic link" in tenant.data_problem()
    assert "Link the tenant folder" in tenant.data_problem()
    with pytest.raises(SnapshotError, match="is a symbolic link"):
        tenant.take({})
    linked = TenantData("acme", str(tmp_path / "linked-tenant"))
    (tmp_path / "linked-tenant").symlink_to(tmp_path / "bigdisk" / "tenant-dir", target_is_directory=True)
    (tmp_path / "bigdisk" / "tenant-dir" / "data").mkdir(parents=True)
    assert linked.data_problem() is None, "a linked tenant folder keeps data, snapshots and asides together"


@pytest.mark.parametrize("member", ["../evil", "/etc/passwd", "other/file"])
def test_a_foreign_archive_is_refused_and_leaves_nothing(tenant, member):
    bad = Path(tenant.snapshot_dir) / "bad.tar.gz"
    bad.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bad, "w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(SnapshotError, match=r"outside data/|not one of ours"):
        tenant.extract_into(str(bad), tenant.new_path("restoring"))
    assert not list(Path(tenant.dir).glob("data.restoring-*"))


def _archive(path: Path, *members: tarfile.TarInfo) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            archive.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return str(path)


def _member(name: str, kind=tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    return info


@pytest.mark.parametrize(
    ("members", "why"),
    [
        ([_member("data/x", tarfile.LNKTYPE, "data/../../etc/passwd")], "hard link"),
        ([_member("data/x", tarfile.LNKTYPE, "/etc/passwd")], "hard link"),
        ([_member("data/x", tarfile.LNKTYPE, "etc/passwd")], "hard link"),
        (
            [_member("data/link", tarfile.SYMTYPE, "/etc"), _member("data/link/passwd", size=1)],
            "through a symbolic link",
        ),
        ([_member("data/dev", tarfile.CHRTYPE)], "device"),
    ],
)
def test_links_out_of_the_data_and_devices_are_refused(tenant, members, why):
    bad = _archive(Path(tenant.snapshot_dir) / "bad.tar.gz", *members)
    with pytest.raises(SnapshotError, match=why):
        tenant.extract_into(bad, tenant.new_path("restoring"))
    assert not list(Path(tenant.dir).glob("data.restoring-*"))


def test_links_inside_the_data_are_restored(tenant):
    (Path(tenant.data_dir) / "again").symlink_to("webui.db")
    os.link(Path(tenant.data_dir) / "webui.db", Path(tenant.data_dir) / "hard")
    meta = tenant.take({})
    restore(tenant, meta["snapshot"])
    assert os.readlink(Path(tenant.data_dir) / "again") == "webui.db"
    assert (Path(tenant.data_dir) / "hard").read_text() == "db"


def test_a_truncated_archive_fails_cleanly(tenant):
    meta = tenant.take({}, now=1000.0)
    Path(meta["snapshot"]).write_bytes(Path(meta["snapshot"]).read_bytes()[:40])
    with pytest.raises(SnapshotError, match=r"restoring .* failed"):
        tenant.extract_into(meta["snapshot"], tenant.new_path("restoring"))
    assert not list(Path(tenant.dir).glob("data.restoring-*"))


def test_rotation_keeps_the_newest_and_every_protected_rollback_point(tenant):
    tenant.take({"from_digest": D1, "to_digest": D2}, now=1000.0)  # the upgrade to D2: a rollback to D1 needs it
    for number in range(5):
        tenant.take({"from_digest": D2, "to_digest": D2}, now=2000.0 + number)  # config changes since
    removed = tenant.rotate(2, protect_digests=(D2,))
    left = tenant.snapshots()
    assert len(left) == 3
    assert len(removed) == 3
    assert (left[0]["from_digest"], left[0]["to_digest"]) == (D1, D2)
    assert tenant.rollback_snapshot(D1)["from_digest"] == D1


def test_rotation_never_keeps_fewer_than_two(tenant):
    for number in range(4):
        tenant.take({}, now=1000.0 + number)
    tenant.rotate(1)
    assert len(tenant.snapshots()) == 2


def test_leftovers_of_a_crash_are_cleaned(tenant):
    Path(tenant.snapshot_dir).mkdir(parents=True, exist_ok=True)
    (Path(tenant.snapshot_dir) / "x.tar.gz.tmp").write_text("half")
    (Path(tenant.dir) / "data.restoring-1").mkdir()
    assert len(tenant.clean_temporaries()) == 2
    assert (Path(tenant.data_dir) / "webui.db").exists(), "the data itself is never touched"


def test_asides_beyond_the_bound_go_only_when_a_snapshot_has_their_bytes(tenant):
    shutil.rmtree(Path(tenant.data_dir) / "cache")  # the snapshot leaves cache/ out: an aside with one is not covered
    meta = tenant.take({}, now=1000.0)
    for number, covered in enumerate([meta["snapshot"], None, None]):
        kind = "failed" if covered is None else "replaced"
        tenant.set_aside_to(tenant.new_path(kind, 2000.0 + number), {"covered_by": covered}, now=2000.0 + number)
        Path(tenant.data_dir).mkdir()
    removed, only_copies = tenant.bound_asides(1)
    assert len(removed) == 1
    assert "data.replaced-" in removed[0]
    assert len(only_copies) == 1
    assert only_copies[0]["kind"] == "failed"
    assert len(tenant.asides()) == 2


def test_writes_since_names_what_a_restore_leaves_out(tenant, tmp_path):
    (Path(tenant.data_dir) / "new.txt").write_text("new")
    os.utime(Path(tenant.data_dir) / "webui.db", (1000, 1000))
    os.utime(Path(tenant.data_dir) / "webui.db-wal", (1000, 1000))
    os.utime(Path(tenant.data_dir) / "cache" / "big.bin", (1000, 1000))
    assert tenant.writes_since(tenant.data_dir, 5000) == (1, ["new.txt"])


def test_an_aside_holding_what_the_snapshot_left_out_is_not_covered_by_it(tenant):
    meta = tenant.take({}, now=1000.0)  # without cache/
    aside = tenant.new_path("replaced", 2000.0)
    tenant.set_aside_to(aside, {"covered_by": meta["snapshot"]}, now=2000.0)
    Path(tenant.data_dir).mkdir()
    assert tenant.asides()[0]["covered_by"] is None, "cache/big.bin is only in the aside"
    for number in range(3):
        tenant.set_aside_to(tenant.new_path("failed", 3000.0 + number), {"covered_by": None}, now=3000.0 + number)
        Path(tenant.data_dir).mkdir()
    removed, _only_copies = tenant.bound_asides(1)
    assert removed == []
    assert (Path(aside) / "cache" / "big.bin").exists()


def test_stamps_sort_by_time_and_sizes_read_well():
    assert stamp(1000.5) < stamp(1000.6) < stamp(1001.0)
    assert human(512) == "512 B"
    assert human(3 * 1024 * 1024) == "3.0 MB"
