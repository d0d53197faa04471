# SPDX-License-Identifier: GPL-3.0-or-later
"""Adopting a hand-started container in the transaction: its data copied in, the original never touched, put back
under its own name on failure; a hand-started container on other data is never replaced without adoption."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.pinned.release.plugins.module_utils import _rollout_data as rollout_data_module
from ansible_collections.pinned.release.plugins.module_utils import _rollout_plan as rollout_plan_module
from ansible_collections.pinned.release.plugins.module_utils._rollout import RolloutError, SimulatedCrash
from ansible_collections.pinned.release.plugins.module_utils._snapshots import SPACE_MARGIN_BYTES

from .fake_host import BROKEN, V1, Host, tenant


@pytest.fixture
def legacy(tmp_path):
    """A host where 'acme-legacy' was started by hand on V1, its data in a folder of its own (a volume)."""
    host = Host(tmp_path)
    volume = tmp_path / "volumes/acme-data/_data"
    (volume / "kv").mkdir(parents=True)
    (volume / "kv/sentinel").write_text("before-adoption")
    host.engine.run_by_hand("acme-legacy", V1, str(volume), 3001, env={"WEBUI_SECRET_KEY": "generated-in-container"})
    return host, volume


def adopting(volume, **extra) -> list:
    return [tenant("acme", 3001, image=V1, adopt_from={"container": "acme-legacy", "data": str(volume)}, **extra)]


def test_an_adopted_container_is_replaced_on_a_copy_of_its_data_and_its_own_data_stays(legacy):
    host, volume = legacy
    result = host.run(V1, tenants=adopting(volume))
    assert not result.get("failed"), result
    assert result["tenants"][0]["outcome"] == "replaced"
    assert host.running("acme") == (V1, "running")
    assert host.read("acme", "sentinel") == "before-adoption"
    assert host.names() == {"openwebui-acme"}, "the hand-started container is removed once the tenant runs"
    assert (volume / "kv/sentinel").read_text() == "before-adoption", "the original data is never touched"
    assert any("adopted from acme-legacy, whose data stays where it was" in w for w in result["warnings"])
    snapshot = result["tenants"][0]["snapshot"]
    assert snapshot, "the adopted data is snapshotted before the managed container starts"
    again = host.run(V1, tenants=adopting(volume))
    assert [t["outcome"] for t in again["tenants"]] == ["unchanged"], "adopt_from is harmless once adopted"


def test_a_failed_adoption_puts_the_hand_started_container_back_under_its_own_name(legacy):
    host, volume = legacy
    result = host.run(BROKEN, tenants=[tenant("acme", 3001, image=BROKEN,
                                              adopt_from={"container": "acme-legacy", "data": str(volume)})],
                      health_timeout=30)  # fmt: skip
    assert result["failed"]
    container = host.engine.by_name("acme-legacy")
    assert (container.image, container.status) == (V1, "running")
    assert host.names() == {"acme-legacy"}
    assert (volume / "kv/sentinel").read_text() == "before-adoption"
    assert "previous image" in result["tenants"][0]["standing"]


def test_a_hand_started_container_on_other_data_is_never_replaced_without_adoption(tmp_path):
    host = Host(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    host.engine.run_by_hand("openwebui-acme", V1, str(elsewhere), 3001)
    with pytest.raises(RolloutError, match=r"tenant acme: openwebui-acme was started by hand with its data on .*elsewhere; "
                                           r"replacing it would start the tenant on .*Adopt it first"):  # fmt: skip
        host.run(V1, tenants=[tenant("acme", 3001)])
    assert host.running("acme") == (V1, "running")
    assert host.names() == {"openwebui-acme"}


@pytest.mark.parametrize("step", ["adopt", "snapshot", "swap", "start", "verify"])
def test_a_crash_during_an_adoption_then_a_plain_rerun_finishes_it(legacy, step):
    host, volume = legacy

    def crash(at, name, phase):
        if at == step and phase == "after":
            raise SimulatedCrash(at)

    with pytest.raises(SimulatedCrash):
        host.rollout(V1, tenants=adopting(volume), failpoint=crash).execute()
    result = host.run(V1, tenants=adopting(volume))
    assert not result.get("failed"), result
    assert host.running("acme") == (V1, "running")
    assert host.read("acme", "sentinel") == "before-adoption"
    assert host.names() == {"openwebui-acme"}
    assert (volume / "kv/sentinel").read_text() == "before-adoption"
    assert host.journal.pending() == {}


def test_a_copy_that_fails_midway_leaves_no_partial_copy_and_puts_the_container_back(legacy, monkeypatch):
    host, volume = legacy

    def disk_full(source, destination):
        (Path(destination) / "kv").mkdir(parents=True)
        (Path(destination) / "kv/sentinel").write_text("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rollout_data_module, "copy_tree", disk_full)
    result = host.run(V1, tenants=adopting(volume))
    assert result["failed"]
    assert "copying its data from" in result["msg"], result["msg"]
    assert "No space left on device" in result["msg"], result["msg"]
    container = host.engine.by_name("acme-legacy")
    assert (container.image, container.status) == (V1, "running")
    assert not list(host.tmp.rglob("*.adopting")), "a partial copy was left behind"
    assert (volume / "kv/sentinel").read_text() == "before-adoption"


def test_an_adoption_that_would_not_fit_with_its_copy_and_snapshot_is_refused_before_anything_stops(
    legacy, monkeypatch
):
    host, volume = legacy
    (volume / "kv/large").write_bytes(b"x" * 300_000)
    monkeypatch.setattr(rollout_plan_module, "free_bytes", lambda path: SPACE_MARGIN_BYTES + 400_000)
    with pytest.raises(
        RolloutError,
        match=r"not enough free space .*acme \(its adopted copy\) 293\.\d KB, acme \(snapshot\) 293.*Nothing was stopped",
    ):
        host.run(V1, tenants=adopting(volume))
    assert not [c for c in host.engine.calls if c[0] == "stop"]
    assert host.engine.by_name("acme-legacy").status == "running"
