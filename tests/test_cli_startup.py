"""Start-up: a command loads what it uses, so help and short commands stay short.

(benchmarks/bench_startup.py measures the times; these tests keep the imports from creeping
back, which is what the times are made of.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from codenv.cli.main import COMMANDS, commands_of
from conftest import Node

# Runs the CLI in a fresh interpreter, then writes the names of the modules it loaded.
PROBE = """
import json, sys
from codenv.cli.main import run
report, sys.argv = sys.argv[1], ["codenv", *sys.argv[2:]]
try:
    run()
except SystemExit:
    pass
with open(report, "w") as handle:
    json.dump(sorted(sys.modules), handle)
"""
SERVER_SIDE = ("fastapi", "starlette", "uvicorn", "codenv.http", "codenv.api", "codenv.web")
NODE_SIDE = ("sqlalchemy", "alembic", "codenv.storage", "codenv.services")


def _loaded(node: Node, tmp_path: Path, *args: str) -> set[str]:
    report = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        env=node.environ,
        capture_output=True,
        check=True,
    )
    return set(json.loads(report.read_text()))


def _any_of(loaded: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if m.split(".")[0] in prefixes or m.startswith(prefixes))


def test_help_loads_no_service_storage_or_server(tmp_path: Path) -> None:
    loaded = _loaded(Node(tmp_path / "home", "http://127.0.0.1:9/simple"), tmp_path, "--help")
    assert not _any_of(loaded, (*SERVER_SIDE, *NODE_SIDE, "httpx")), "--help imports them"


def test_a_json_listing_loads_no_rich_http_client_or_migrations(tmp_path: Path) -> None:
    node = Node(tmp_path / "home", "http://127.0.0.1:9/simple")
    node.run("list")  # creates the schema (Alembic's job, once)
    loaded = _loaded(node, tmp_path, "list", "--json")
    assert not _any_of(loaded, ("rich", "httpx", "alembic", *SERVER_SIDE))
    assert "sqlalchemy.orm" in loaded


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
