"""A node whose state lives in PostgreSQL (CODENV_DATABASE_URL): the same CLI, the same rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Node
from support.databases import fresh_database_url
from support.pkgindex import PackageIndex
from support.samples import slow_archive

pytestmark = pytest.mark.postgres


def test_build_update_rollback_and_serialized_builds_on_postgresql(
    tmp_path: Path, sample_index: PackageIndex, newest: str
) -> None:
    with fresh_database_url("postgresql", tmp_path) as url:
        node = Node(tmp_path / "home", sample_index.url, {"CODENV_DATABASE_URL": url})
        node.run("create", "demo", "--python", newest, "--no-core-packages")
        node.run("save", "demo", "--add", "beta", "--update")
        assert node.env_python_run("demo", "import beta; print(beta.__version__)") == "2.0"
        node.run("rollback", "demo", "1")
        assert json.loads(node.run("show", "demo", "--json").stdout)["active_revision"] == 1

        slow = slow_archive(node.allow_local_sources(), "slowpkg", "1.0", 2)
        node.run("save", "demo", "--add", str(slow))
        first, second = node.popen("update", "demo"), node.popen("update", "demo", "--rebuild")
        assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
        builds = json.loads(node.run("builds", "demo", "--json").stdout)[:2]
        earlier, later = sorted(builds, key=lambda build: build["started_at"])
        assert later["started_at"] >= earlier["finished_at"], "builds of one env overlapped"
        assert not (node.home / "codenv.db").exists(), "state went to SQLite, not PostgreSQL"
