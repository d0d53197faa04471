# SPDX-License-Identifier: GPL-3.0-or-later
"""The built collection: no tests/lab/molecule/bench inside; installs and resolves its playbooks by FQCN;
an execution environment's build context comes out of execution-environment.yml with the collection's needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile

import pytest
import yaml

from tests.support.lab import ROOT


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The collection built and installed as a user would, from a shell without the checkout's settings."""
    tmp_path = tmp_path_factory.mktemp("build")
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
        ".config/",
        ".venv/",
        "inventories/lab/.release_state",
    ):
        assert not [n for n in names if n.startswith(excluded)], f"{excluded} is in the built collection"
    for needed in (
        "plugins/modules/resolve_digest.py",
        "roles/tenant/tasks/main.yml",
        "playbooks/drift.yml",
        "meta/runtime.yml",
    ):
        assert needed in names, f"{needed} is missing from the built collection"

    # --force: a copy on the default collections path (say ~/.ansible/collections) would make the install a no-op.
    collections = tmp_path / "collections"
    installed = subprocess.run(
        ["ansible-galaxy", "collection", "install", "--offline", "--force", "-p", str(collections), str(tarball)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    return {"tarball": tarball, "collections": collections, "env": env, "dir": tmp_path}


def test_build_install_and_playbooks_resolve_by_fqcn(built):
    env, tmp_path = built["env"], built["dir"]
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


def test_execution_environment_context_carries_the_collection_and_its_needs(built, tmp_path):
    # As execution-environment.yml's header says: the tarball next to it, then ansible-builder.
    shutil.copy(ROOT / "execution-environment.yml", tmp_path)
    shutil.copy(built["tarball"], tmp_path)
    created = subprocess.run(
        ["ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context"],
        capture_output=True, text=True, env=built["env"], cwd=tmp_path, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    context = tmp_path / "context"
    containerfile = next(context.glob("*file")).read_text()
    assert "ansible-core==2.19.14" in containerfile
    assert (context / "_build/collections/pinned-release-0.1.0.tar.gz").is_file()
    galaxy = yaml.safe_load((context / "_build/requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": "collections/pinned-release-0.1.0.tar.gz", "type": "file"}]

    # What the builder's introspection finds in the installed collection (meta/execution-environment.yml).
    found = subprocess.run(
        ["ansible-builder", "introspect", str(built["collections"])],
        capture_output=True, text=True, env=built["env"], cwd=tmp_path, check=False,
    )  # fmt: skip
    assert found.returncode == 0, found.stdout + found.stderr
    for needed in ("requests>=2.28", "docker>=7.0", "sigstore==4.5.1", "openssh-client [platform:dpkg]", "git"):
        assert needed in found.stdout, f"{needed} not declared for execution environments:\n{found.stdout}"


def test_requirements_file_installs_pinned_release():
    wanted = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
    assert [entry["name"] for entry in wanted] == ["pinned.release"]
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    low, high = (part.strip(">=<") for part in wanted[0]["version"].split(","))
    assert tuple(map(int, low.split("."))) <= tuple(map(int, version.split("."))) < tuple(map(int, high.split(".")))
