# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshots of a tenant's data: whole, excluding caches, restorable only whole, rotated without losing the rollback point."""

from __future__ import annotations

import io
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


def test_extract_then_put_in_place_restores_exactly(tenant):
    meta = tenant.take({}, now=1000.0)
    (Path(tenant.data_dir) / "webui.db").write_text("changed")
    aside = tenant.set_aside("replaced", {"covered_by": None}, now=1001.0)
    restored = tenant.extract(meta["snapshot"], now=1002.0)
    tenant.put_in_place(restored)
    assert (Path(tenant.data_dir) / "webui.db").read_text() == "db"
    assert (Path(aside) / "webui.db").read_text() == "changed", "the replaced data is kept aside"
    assert [a["kind"] for a in tenant.asides()] == ["replaced"]


@pytest.mark.parametrize("member", ["../evil", "/etc/passwd", "other/file"])
def test_a_foreign_archive_is_refused_and_leaves_nothing(tenant, member):
    bad = Path(tenant.snapshot_dir) / "bad.tar.gz"
    bad.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bad, "w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(SnapshotError, match=r"outside data/|not one of ours"):
        tenant.extract(str(bad))
    assert not list(Path(tenant.dir).glob("data.restoring-*"))


def test_a_truncated_archive_fails_cleanly(tenant):
    meta = tenant.take({}, now=1000.0)
    Path(meta["snapshot"]).write_bytes(Path(meta["snapshot"]).read_bytes()[:40])
    with pytest.raises(SnapshotError, match=r"restoring .* failed"):
        tenant.extract(meta["snapshot"])
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
    meta = tenant.take({}, now=1000.0)
    for number, covered in enumerate([meta["snapshot"], None, None]):
        tenant.set_aside("failed" if covered is None else "replaced", {"covered_by": covered}, now=2000.0 + number)
        Path(tenant.data_dir).mkdir()
    removed, only_copies = tenant.bound_asides(1)
    assert len(removed) == 1
    assert "data.replaced-" in removed[0]
    assert len(only_copies) == 1
    assert only_copies[0]["kind"] == "failed"
    assert len(tenant.asides()) == 2


def test_writes_since_names_what_a_restore_leaves_out(tenant, tmp_path):
    import os

    (Path(tenant.data_dir) / "new.txt").write_text("new")
    os.utime(Path(tenant.data_dir) / "webui.db", (1000, 1000))
    os.utime(Path(tenant.data_dir) / "webui.db-wal", (1000, 1000))
    os.utime(Path(tenant.data_dir) / "cache" / "big.bin", (1000, 1000))
    assert tenant.writes_since(tenant.data_dir, 5000) == ["new.txt"]


def test_stamps_sort_by_time_and_sizes_read_well():
    assert stamp(1000.5) < stamp(1000.6) < stamp(1001.0)
    assert human(512) == "512 B"
    assert human(3 * 1024 * 1024) == "3.0 MB"
