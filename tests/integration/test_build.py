# SPDX-License-Identifier: GPL-3.0-or-later
"""The built collection: no tests/lab/molecule/bench inside; installs and resolves its playbooks by FQCN."""

from __future__ import annotations

import os
import subprocess
import tarfile

from tests.support.lab import ROOT


def test_build_install_and_playbooks_resolve_by_fqcn(tmp_path):
    # A user's shell: nothing from the checkout's ansible.cfg or the test session's environment.
    # (A missing ANSIBLE_CONFIG file would make Ansible fall back to ./ansible.cfg, so it exists, empty.)
    (tmp_path / "empty.cfg").write_text("")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "ANSIBLE_CONFIG": str(tmp_path / "empty.cfg"),
    }
    built = subprocess.run(
        ["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = tmp_path / "pinned-release-0.1.0.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    for excluded in (
        "tests/",
        "lab/",
        "molecule/",
        "bench/",
        ".collections",
        ".venv/",
        "inventories/lab/release_state",
    ):
        assert not [n for n in names if n.startswith(excluded)], f"{excluded} is in the built collection"
    for needed in (
        "plugins/modules/resolve_digest.py",
        "roles/tenant/tasks/main.yml",
        "playbooks/drift.yml",
        "meta/runtime.yml",
    ):
        assert needed in names

    collections = tmp_path / "collections"
    installed = subprocess.run(
        ["ansible-galaxy", "collection", "install", "--offline", "-p", str(collections), str(tarball)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    for playbook in ("drift", "deploy", "promote", "rollback"):
        check = subprocess.run(
            ["ansible-playbook", f"pinned.release.{playbook}", "--syntax-check", "-i", "localhost,"],
            capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert check.returncode == 0, f"{playbook}: {check.stdout}{check.stderr}"
    doc = subprocess.run(
        ["ansible-doc", "-t", "module", "pinned.release.pin_digest"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert doc.returncode == 0, doc.stderr
