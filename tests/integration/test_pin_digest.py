# SPDX-License-Identifier: GPL-3.0-or-later
"""pin_digest with real files, the real ansible module runner, and the lab registry for verify_registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
import yaml

from ansible_collections.pinned.release.plugins.module_utils._files import exclusive_lock
from tests.support.lab import APP_REPO, ROOT, ansible_module, registry_digest, signing_credentials
from tests.support.registries import copy_image

MODULE = "pinned.release.pin_digest"
SIGNING = "127.0.0.1:" + os.environ.get(
    "PINNED_LAB_SIGNING_REGISTRY_PORT", "5005"
)  # the lab's registry with basic auth


@pytest.fixture
def work(tmp_path, lab):
    """A pin directory, legacy scripts shaped like the old ones, and passing evidence for v1 and v2."""
    for name in ("start-tenant.sh", "manage-tenants.sh"):
        text = (ROOT / "tests/fixtures/legacy" / name).read_text().replace("@REPO@", APP_REPO)
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o750)
    digests = {tag: registry_digest(tag) for tag in ("v1", "v2", "broken")}
    for tag, digest in digests.items():
        record = {
            "digest": digest,
            "image": f"{APP_REPO}@{digest}",
            "passed": tag != "broken",
            "finished_at": "2026-11-24T10:00:00Z",
            "operator": "tester",
            "hosts": {"test1": {"tenants": {"alpha": {"checks": [{"name": "health", "passed": tag != "broken"}]}}}},
        }
        (tmp_path / f"{tag}.json").write_text(json.dumps(record))
    return tmp_path, digests


def pin_tested_v1(path: Path, work_dir: Path, digests: dict) -> dict:
    """Pin v1, with its passing test record, into the pin file at ``path``."""
    args = {
        "path": str(path),
        "image": f"{APP_REPO}@{digests['v1']}",
        "reason": "r",
        "evidence": str(work_dir / "v1.json"),
    }
    return ansible_module(MODULE, args)


def snapshot(directory: Path) -> dict:
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mode)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_pin_check_apply_idempotent_with_docs_and_targets(work):
    work_dir, digests = work
    targets = [str(work_dir / "start-tenant.sh"), str(work_dir / "manage-tenants.sh")]
    args = {
        "image": f"{APP_REPO}:release@{digests['v1']}",
        "reason": "release 1",
        "evidence": str(work_dir / "v1.json"),
        "docs_path": str(work_dir / "DOCKER_IMAGE_PIN.md"),
        "targets": targets,
        "on_unpinned": "warn",
    }
    before = snapshot(work_dir)
    checked = ansible_module(MODULE, {"path": str(work_dir / "pin.yml"), **args}, check=True)
    assert checked["changed"] is True, checked
    assert snapshot(work_dir) == before, "check mode wrote something"

    applied = ansible_module(MODULE, {"path": str(work_dir / "pin.yml"), **args})
    assert applied["changed"] is True
    assert applied["current"]["digest"] == digests["v1"]
    assert applied["current"]["evidence"]["passed"] is True
    assert applied["previous"] is None
    data = yaml.safe_load((work_dir / "pin.yml").read_text())
    assert data["release_pin"]["image"] == f"{APP_REPO}@{digests['v1']}"
    assert (work_dir / "pin.yml").read_text().startswith("# Managed by pinned.release.pin_digest")
    manager = (work_dir / "manage-tenants.sh").read_text()
    assert manager.count(digests["v1"]) == 2
    assert "docker.io/library/nginx@sha256:2222" in manager
    assert (work_dir / "manage-tenants.sh").stat().st_mode & 0o777 == 0o750
    by_path = {t["path"]: t for t in applied["targets"]}
    assert [r["line"] for r in by_path[targets[1]]["replacements"]] == [4, 13]
    assert by_path[targets[1]]["unpinned_refs"] == [{"line": 17, "reference": f"{APP_REPO}:main"}]
    assert any("line 17" in w for w in applied.get("warnings", []))
    assert f"| Digest | `{digests['v1']}` |" in (work_dir / "DOCKER_IMAGE_PIN.md").read_text()

    after = snapshot(work_dir)
    again = ansible_module(MODULE, {"path": str(work_dir / "pin.yml"), **args})
    assert again["changed"] is False
    assert snapshot(work_dir) == after


def test_history_and_rollback_pin(work):
    work_dir, digests = work
    path = str(work_dir / "pin.yml")
    ansible_module(
        MODULE,
        {"path": path, "image": f"{APP_REPO}@{digests['v1']}", "reason": "r1", "evidence": str(work_dir / "v1.json")},
    )
    second = ansible_module(
        MODULE,
        {"path": path, "image": f"{APP_REPO}@{digests['v2']}", "reason": "r2", "evidence": str(work_dir / "v2.json")},
    )
    assert second["previous"]["digest"] == digests["v1"]
    back = ansible_module(
        MODULE,
        {"path": path, "image": second["previous"]["image"], "reason": "rollback: r2 broke", "require_evidence": False},
    )
    assert back["changed"] is True
    assert back["current"]["digest"] == digests["v1"]
    assert [h["digest"] for h in back["history"]] == [digests["v2"], digests["v1"]]
    read = ansible_module(MODULE, {"path": path})
    assert read["changed"] is False
    assert read["current"] == back["current"]


def test_a_re_pin_from_the_history_says_why_the_registry_did_not_confirm_it(work):
    """trust_history pins a digest of the history when the registry cannot confirm it (an emergency rollback); the
    result says why, and a registry refusing the credentials is not called unreachable."""
    work_dir, digests = work
    user, password = signing_credentials()
    repository = f"{SIGNING}/pin-test/{uuid.uuid4().hex[:12]}"
    for tag in ("v1", "v2"):
        copy_image(tag, f"{repository}:{tag}", ["--dest-tls-verify=false", "--dest-creds", f"{user}:{password}"])
    path = str(work_dir / "signed-pin.yml")
    for tag in ("v1", "v2"):
        pinned = ansible_module(MODULE, {"path": path, "image": f"{repository}@{digests[tag]}", "reason": tag,
                                         "require_evidence": False, "username": user, "password": password})  # fmt: skip
        assert pinned.get("registry_verified") is True, pinned.get("msg", pinned)
    wrong = f"not-{password}"
    back = {"path": path, "image": f"{repository}@{digests['v1']}", "reason": "rollback: v2 broke",
            "require_evidence": False, "kind": "rollback", "username": user, "password": wrong}  # fmt: skip
    refused = ansible_module(MODULE, back)
    assert refused.get("failed") is True
    assert f"registry {SIGNING} rejected the credentials" in refused["msg"], refused["msg"]
    trusted = ansible_module(MODULE, {**back, "trust_history": True})
    assert (trusted["changed"], trusted["registry_verified"]) == (True, False), trusted.get("msg", trusted)
    assert trusted["registry_error"].startswith(f"registry {SIGNING} rejected the credentials"), trusted
    assert wrong not in trusted["_stdout"]
    assert wrong not in refused["_stdout"]
    assert yaml.safe_load(Path(path).read_text())["release_pin"]["digest"] == digests["v1"]


def test_force_without_evidence_is_recorded(work):
    work_dir, digests = work
    path = str(work_dir / "pin.yml")
    refused = ansible_module(
        MODULE,
        {
            "path": path,
            "image": f"{APP_REPO}@{digests['broken']}",
            "reason": "x",
            "evidence": str(work_dir / "broken.json"),
        },
    )
    assert refused["failed"] is True
    assert "checklist failed" in refused["msg"]
    no_reason = ansible_module(MODULE, {"path": path, "image": f"{APP_REPO}@{digests['broken']}", "force": True})
    assert "force: true needs a reason" in no_reason["msg"]
    forced = ansible_module(
        MODULE,
        {"path": path, "image": f"{APP_REPO}@{digests['broken']}", "force": True, "reason": "hotfix tested by hand"},
    )
    assert forced["current"]["forced"] is True
    moved = ansible_module(
        MODULE,
        {"path": path, "image": f"{APP_REPO}@{digests['v1']}", "reason": "back", "evidence": str(work_dir / "v1.json")},
    )
    assert moved["history"][0]["forced"] is True


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("corrupt", "is not valid YAML at line 3, column 3"),
        ("unknown", "unknown structure: unexpected key(s) tenants"),
        ("image_id", "(the image config, i.e. a local image ID), not a manifest"),
        ("tag_only", "is not pinned"),
        ("other_repo", "different repository than the current pin"),
        ("evidence_other_digest", "is for sha256:"),
        ("evidence_failed", "checklist failed"),
        ("no_evidence", "no evidence for"),
        ("evidence_missing", "does not exist: run deploy.yml -l test"),
        ("target_missing", "target {work}/nope.sh does not exist"),
        ("target_unreadable", "is not UTF-8 text"),
        ("target_only_tag", "references 127.0.0.1:5000/pinned/openwebui only by tag (line 1: "),
        ("target_no_reference", "has no 127.0.0.1:5000/pinned/openwebui@sha256: reference"),
        ("target_unpinned_fail", "by a mutable tag (line 17: "),
        ("unknown_digest", "not found in repository 127.0.0.1:5000/pinned/openwebui"),
        ("no_reason", "reason is required"),
    ],
)
def test_bad_input_is_one_clear_error_and_touches_nothing(work, case, message):
    work_dir, digests = work
    path = work_dir / "pin.yml"
    ansible_module(
        MODULE,
        {
            "path": str(path),
            "image": f"{APP_REPO}@{digests['v1']}",
            "reason": "r1",
            "evidence": str(work_dir / "v1.json"),
        },
    )
    args = {
        "path": str(path),
        "image": f"{APP_REPO}@{digests['v2']}",
        "reason": "r2",
        "evidence": str(work_dir / "v2.json"),
    }
    good_target = str(work_dir / "start-tenant.sh")
    if case == "corrupt":
        path.write_text("release_pin:\n  image: x\n  - [broken\n")
    elif case == "unknown":
        path.write_text(path.read_text() + "tenants: []\n")
    elif case == "image_id":
        # The local image ID of v2: what `docker images --digests` confuses people with.
        image_id = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", f"{APP_REPO}:v2"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        args.update(image=f"{APP_REPO}@{image_id}", require_evidence=False)
        del args["evidence"]
    elif case == "unknown_digest":
        args.update(image=f"{APP_REPO}@sha256:{'e' * 64}", force=True)
    elif case == "tag_only":
        args["image"] = f"{APP_REPO}:v2"
    elif case == "other_repo":
        args["image"] = f"127.0.0.1:5000/pinned/other@{digests['v2']}"
    elif case == "evidence_other_digest":
        args["evidence"] = str(work_dir / "v1.json")
    elif case == "evidence_failed":
        args.update(image=f"{APP_REPO}@{digests['broken']}", evidence=str(work_dir / "broken.json"))
    elif case == "no_evidence":
        del args["evidence"]
    elif case == "evidence_missing":
        args["evidence"] = str(work_dir / "missing.json")
    elif case == "target_missing":
        args["targets"] = [good_target, str(work_dir / "nope.sh")]
    elif case == "target_unreadable":
        (work_dir / "bin.sh").write_bytes(b"\xff\xfe\x00binary")
        args["targets"] = [good_target, str(work_dir / "bin.sh")]
    elif case == "target_only_tag":
        (work_dir / "tagonly.sh").write_text(f"docker run {APP_REPO}:main\n")
        args["targets"] = [good_target, str(work_dir / "tagonly.sh")]
    elif case == "target_no_reference":
        (work_dir / "unrelated.sh").write_text("echo hello\n")
        args["targets"] = [good_target, str(work_dir / "unrelated.sh")]
    elif case == "target_unpinned_fail":
        args["targets"] = [good_target, str(work_dir / "manage-tenants.sh")]
    elif case == "no_reason":
        del args["reason"]
    before = snapshot(work_dir)
    result = ansible_module(MODULE, args)
    assert result["failed"] is True, result
    assert message.format(work=work_dir) in result["msg"]
    assert "\n" not in result["msg"]
    assert snapshot(work_dir) == before


def test_diff_mode_shows_the_text_change(work):
    work_dir, digests = work
    from tests.support.lab import run

    playbook = work_dir / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [{"hosts": "localhost", "gather_facts": False, "tasks": [{"pinned.release.pin_digest": {
                "path": str(work_dir / "pin.yml"), "image": f"{APP_REPO}@{digests['v1']}", "reason": "r",
                "evidence": str(work_dir / "v1.json"), "targets": [str(work_dir / "start-tenant.sh")]}}]}]
        )
    )  # fmt: skip
    result = run(["ansible-playbook", str(playbook), "--diff", "--check"])
    assert result.returncode == 0, result.stdout
    assert f"-  {APP_REPO}@sha256:1111" in result.stdout
    assert f"+  {APP_REPO}@{digests['v1']}" in result.stdout


def test_backup_keeps_a_copy(work):
    work_dir, digests = work
    original = (work_dir / "start-tenant.sh").read_text()
    result = ansible_module(MODULE, {
        "path": str(work_dir / "pin.yml"), "image": f"{APP_REPO}@{digests['v1']}", "reason": "r",
        "evidence": str(work_dir / "v1.json"), "targets": [str(work_dir / "start-tenant.sh")], "backup": True,
    })  # fmt: skip
    assert len(result["backup_files"]) == 1
    assert Path(result["backup_files"][0]).read_text() == original


def test_concurrent_promotion_waits_for_the_lock(work):
    work_dir, digests = work
    path = work_dir / "pin.yml"
    release, acquired = threading.Event(), threading.Event()

    def hold():
        with exclusive_lock(str(work_dir / ".pin.yml.lock")):
            acquired.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert acquired.wait(10)
    try:
        from ansible_collections.pinned.release.plugins.module_utils._files import FileChangeError

        with (
            pytest.raises(FileChangeError, match="locked by another run"),
            exclusive_lock(str(work_dir / ".pin.yml.lock"), timeout=0.5),
        ):
            pass
    finally:
        release.set()
        holder.join()
    result = pin_tested_v1(path, work_dir, digests)
    assert result["changed"] is True


def test_unwritable_directory_loses_nothing(work):
    work_dir, digests = work
    if os.geteuid() == 0:
        # root ignores directory modes; use a read-only bind of a file's directory instead: a path under a file.
        path = work_dir / "start-tenant.sh" / "pin.yml"
    else:  # pragma: no cover
        shutil.rmtree(work_dir / "ro", ignore_errors=True)
        (work_dir / "ro").mkdir(mode=0o500)
        path = work_dir / "ro/pin.yml"
    before = snapshot(work_dir)
    result = pin_tested_v1(path, work_dir, digests)
    assert result["failed"] is True
    assert "\n" not in result["msg"]
    assert snapshot(work_dir) == before
