"""Start-up: a command loads what it uses, so help and short commands stay short.

(benchmarks/bench_startup.py measures the times; these tests keep the imports from creeping
back, which is what the times are made of.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codenv.cli.main import COMMANDS, commands_of
from conftest import Node
from support.pkgindex import PackageIndex

# Runs the CLI in a fresh interpreter, then writes the names of the modules it loaded.
PROBE = """
import gc, json, sys
from codenv.cli.main import run
report, sys.argv = sys.argv[1], ["codenv", *sys.argv[2:]]
code = 0
try:
    run()
except SystemExit as stop:
    code = stop.code or 0
with open(report, "w") as handle:
    frozen = gc.get_freeze_count()
    json.dump({"modules": sorted(sys.modules), "exit": code, "frozen": frozen}, handle)
"""
SERVER_SIDE = ("fastapi", "starlette", "uvicorn", "codenv.http", "codenv.api", "codenv.web")
NODE_SIDE = ("sqlalchemy", "alembic", "codenv.storage", "codenv.services")
# What only builds use: the sandbox (its network proxy), the executor, the job that runs a
# build. asyncio cannot be on this list: SQLAlchemy itself imports it (sqlalchemy.util).
BUILD_SIDE = ("codenv.sandbox", "codenv.builds.executor", "codenv.services.build_jobs")


def _report(node: Node, tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """What PROBE found after `codenv ARGS`, and the command's output."""
    report = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        env=node.environ,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(report.read_text()), done.stdout + done.stderr


def _probe(node: Node, tmp_path: Path, *args: str) -> tuple[set[str], int, str]:
    """The modules `codenv ARGS` loaded, its exit code and its output."""
    found, output = _report(node, tmp_path, *args)
    return set(found["modules"]), found["exit"], output


def _loaded(node: Node, tmp_path: Path, *args: str) -> set[str]:
    return _probe(node, tmp_path, *args)[0]


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Node:
    """A home with one env of two revisions (the second a rebuild of the same plan)."""
    node = Node(tmp_path_factory.mktemp("startup") / "home", sample_index.url)
    node.run("create", "tiny", "--python", newest, "--no-core-packages")
    node.run("update", "tiny", "--rebuild")
    return node


def _any_of(loaded: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if m.split(".")[0] in prefixes or m.startswith(prefixes))


def test_help_loads_no_service_storage_or_server(tmp_path: Path) -> None:
    loaded = _loaded(Node(tmp_path / "home", "http://127.0.0.1:9/simple"), tmp_path, "--help")
    banned = (*SERVER_SIDE, *NODE_SIDE, "httpx", "asyncio", "packaging")
    assert not _any_of(loaded, banned), "--help imports"


def test_the_exit_collections_skip_what_the_command_loaded(tmp_path: Path) -> None:
    """Python's collections at shutdown would walk every imported object (~0.06 s after the
    ORM): `run` freezes them, for a failing command too."""
    node = Node(tmp_path / "home", "http://127.0.0.1:9/simple")
    for args in (("--help",), ("show", "nothing-here")):
        assert _report(node, tmp_path, *args)[0]["frozen"] > 10_000, args


def test_a_json_listing_loads_no_rich_http_client_or_migrations(tmp_path: Path) -> None:
    node = Node(tmp_path / "home", "http://127.0.0.1:9/simple")
    node.run("list")  # creates the schema (Alembic's job, once)
    loaded = _loaded(node, tmp_path, "list", "--json")
    assert not _any_of(loaded, ("rich", "httpx", "alembic", *SERVER_SIDE))
    assert "sqlalchemy.orm" in loaded


def test_listing_envs_loads_no_build_plan_or_installer(built: Node, tmp_path: Path) -> None:
    loaded, exit_code, output = _probe(built, tmp_path, "list", "--json")
    assert exit_code == 0 and '"tiny"' in output, output
    unneeded = ("codenv.backends", "codenv.services.plans", "codenv.interpreters")
    assert not _any_of(loaded, (*BUILD_SIDE, *unneeded, "rich", "alembic", *SERVER_SIDE))


# show reads the live env's packages with the installer (app.tools: the executor module holds
# the tools, not the sandbox), and so does a rollback, which shows the env it switched; an
# unchanged update makes the plan and needs no installer.
READS = ("codenv.sandbox", "codenv.services.build_jobs")
NOT_BUILDING = {
    "show": (("show", "tiny", "--json"), READS),
    "unchanged-update": (("update", "tiny"), (*BUILD_SIDE, "codenv.backends")),
    "rollback": (("rollback", "tiny", "1"), READS),
}


@pytest.mark.parametrize("case", NOT_BUILDING)
def test_commands_that_build_nothing_load_no_build_machinery(
    built: Node, tmp_path: Path, case: str
) -> None:
    args, unneeded = NOT_BUILDING[case]
    loaded, exit_code, output = _probe(built, tmp_path, *args)
    assert exit_code == 0, output
    assert case != "unchanged-update" or "already up to date" in output
    assert not _any_of(loaded, (*unneeded, "alembic", "httpx", *SERVER_SIDE))


def test_remote_mode_loads_no_storage(tmp_path: Path) -> None:
    node = Node(
        tmp_path / "home",
        "http://127.0.0.1:9/simple",
        {"CODENV_URL": "http://127.0.0.1:9", "CODENV_TOKEN": "cdv_x"},
    )
    loaded = _loaded(node, tmp_path, "list", "--json")
    assert "httpx" in loaded
    assert not _any_of(loaded, (*NODE_SIDE, *SERVER_SIDE))


def test_every_command_is_where_the_table_says() -> None:
    """Commands are made on first use from COMMANDS: each module registers exactly its own."""
    for module in set(COMMANDS.values()):
        listed = {name for name, where in COMMANDS.items() if where == module}
        assert set(commands_of(module)) == listed, module
