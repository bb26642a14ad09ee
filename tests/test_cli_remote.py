"""Remote mode: the CLI through a server (`--url`, token) prints what local mode prints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Node
from support.pkgindex import PackageIndex
from support.server import RunningServer, running_server


@pytest.fixture
def served(tmp_path: Path, sample_index: PackageIndex) -> Iterator[tuple[Node, RunningServer]]:
    node = Node(tmp_path / "home", sample_index.url)
    with running_server(node.home, sample_index.url) as server:
        yield node, server


def test_remote_mode_matches_local_mode(served: tuple[Node, RunningServer], newest: str) -> None:
    node, server = served
    remote = Node(
        node.home.parent / "elsewhere",
        node.index_url,
        {"CODENV_URL": server.url, "CODENV_TOKEN": server.admin_token()},
    )

    built = remote.run("create", "demo", "--python", newest, "--no-core-packages")
    assert "demo: revision 1 is active" in built.stdout and "==> " in built.stderr
    remote.run("save", "demo", "--add", "beta", "--update")
    for command in (
        ("list",),
        ("show", "demo"),
        ("installed", "demo"),
        ("revisions", "demo"),
        ("sets",),
        ("show", "demo", "--json"),
        ("builds", "demo", "--json"),
    ):
        assert remote.run(*command).stdout == node.run(*command).stdout, command
    assert remote.run("logs", "demo").stdout == node.run("logs", "demo").stdout

    missing = remote.run("show", "nothing", check=False)
    assert (missing.returncode, missing.stderr) == (
        3,
        "error [name]: no code env named 'nothing'\n",
    )
    invalid = remote.run("save", "demo", "--add", "beta[", check=False)
    assert invalid.returncode == 2 and "error [requested]: line" in invalid.stderr
    rolled = remote.run("rollback", "demo", "1", "--json")
    assert json.loads(rolled.stdout)["number"] == 1
    local_only = remote.run("run", "demo", "--", "python", "-V", check=False)
    assert local_only.returncode == 1 and "runs on the node itself" in local_only.stderr
    assert not (node.home.parent / "elsewhere").exists(), "remote mode touched no local home"


def test_remote_mode_needs_a_token(served: tuple[Node, RunningServer]) -> None:
    node, server = served
    remote = Node(node.home, node.index_url, {"CODENV_URL": server.url, "CODENV_TOKEN": ""})
    refused = remote.run("list", check=False)
    assert refused.returncode == 1 and "needs an API token" in refused.stderr
    remote.environ_extra["CODENV_TOKEN"] = "cdv_not-a-real-token"
    assert remote.run("list", check=False).returncode == 5
