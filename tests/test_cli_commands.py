"""The rest of the CLI a user touches: interpreters, base packages, locks, hard links, delete."""

from __future__ import annotations

import json
import os
from pathlib import Path

from codenv.interpreters import Discovery
from conftest import Node
from support.pkgindex import PackageIndex


def test_pythons_lists_and_adds_interpreters(
    node: Node, pythons: Discovery, tmp_path: Path
) -> None:
    listed = json.loads(node.run("pythons", "--json").stdout)
    versions = {item["version"] for item in listed["interpreters"]}
    assert {item.version for item in pythons.found} == versions
    assert all(
        item["deprecated"] == (item["version"] < "3.9")
        for item in listed["interpreters"]
        if item["version"].startswith("3.") and len(item["version"].split(".")[1]) == 1
    )

    link = tmp_path / "bin" / "python-extra"
    link.parent.mkdir()
    link.symlink_to(pythons.found[-1].path)
    added = json.loads(node.run("pythons", "add", str(link), "--json").stdout)
    assert added["source"] == "configured" and added["path"] == str(link)

    not_python = tmp_path / "fake-python"
    not_python.write_text("#!/bin/sh\necho hello\n")
    not_python.chmod(0o755)
    refused = node.run("pythons", "add", str(not_python), check=False)
    assert refused.returncode == 2 and "error [path]" in refused.stderr
    relative = node.run("pythons", "add", "python3", check=False)
    assert relative.returncode == 2 and "absolute" in relative.stderr


def test_base_packages_follow_the_options(node: Node, oldest: str, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--jupyter", "--core-packages")
    shown = json.loads(node.run("show", "demo", "--json").stdout)
    assert shown["base_packages"] == ["codenv-runtime==0.1.0", "ipykernel>=6"]
    if oldest == "3.6":
        node.run("save", "demo", "--python", "3.6")
        shown = json.loads(node.run("show", "demo", "--json").stdout)
        assert shown["base_packages"][1] == "ipykernel>=5.5,<6"


def test_lock_holds_exact_versions_and_hashes(
    node: Node, newest: str, sample_index: PackageIndex
) -> None:
    wheel = sample_index.distributions()["beta"][0].name
    url_line = f"beta @ {sample_index.file_url(wheel)}"
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", url_line, "--add", "gamma", "--update")

    lock = (node.home / "envs" / "demo" / "current" / ".codenv" / "lock.txt").read_text()
    assert "alpha==1.0" in lock and "gamma==0.5" in lock
    assert "--hash=sha256:" in lock
    assert node.env_python_run("demo", "import beta, gamma; print(beta.__version__)") == "2.0"


def test_envs_share_files_through_hard_links(node: Node, newest: str) -> None:
    for name in ("one", "two"):
        node.run("create", name, "--python", newest, "--no-core-packages")
        node.run("save", name, "--add", "beta", "--update")
    files = [
        next((node.home / "envs" / name / "current" / "lib").glob("python*/site-packages/beta"))
        / "__init__.py"
        for name in ("one", "two")
    ]
    first, second = (os.stat(path) for path in files)
    assert first.st_ino == second.st_ino and first.st_nlink >= 3  # both envs and the cache


def test_no_wait_returns_a_build_id_and_logs_follow_it(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "beta")
    build_id = node.run("update", "demo", "--no-wait").stdout.strip()
    assert len(build_id) == 32

    followed = node.run("logs", "demo", "--build", build_id, "--follow", timeout=120).stdout
    assert "==> " in followed and "revision 2 is active" in followed
    builds = json.loads(node.run("builds", "demo", "--json").stdout)
    assert builds[0]["id"] == build_id and builds[0]["status"] == "succeeded"
    previous = json.loads(node.run("installed", "demo", "--revision", "1", "--json").stdout)
    assert previous["revision"] == 1 and previous["packages"] == []


def test_delete_removes_revisions_and_keeps_resources_unless_confirmed(
    node: Node, newest: str
) -> None:
    for name in ("keep", "drop"):
        node.run("create", name, "--python", newest, "--no-core-packages")
        resources = node.home / "envs" / name / "resources"
        resources.mkdir()
        (resources / "model.bin").write_text("weights")

    node.run("delete", "keep", input="y\nn\n")
    node.run("delete", "drop", "--yes", "--delete-resources")

    assert json.loads(node.run("list", "--json").stdout) == []
    (kept,) = (node.home / "kept-resources").iterdir()  # set aside for administrators
    assert kept.name.startswith("keep-")
    assert (kept / "resources" / "model.bin").read_text() == "weights"
    assert not (node.home / "envs" / "keep").exists()
    assert not (node.home / "envs" / "drop").exists()
    refused = node.run("delete", "keep", "--yes", check=False)
    assert refused.returncode == 3 and "no code env named 'keep'" in refused.stderr
