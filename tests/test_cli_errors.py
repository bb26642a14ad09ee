"""Every error is one line on stderr and an exit code; `--debug` adds the full traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from conftest import Node
from support.server import free_port

UNUSED_INDEX = "http://127.0.0.1:9/simple"


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_an_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    remote = Node(tmp_path / "home", UNUSED_INDEX, {"CODENV_URL": url, "CODENV_TOKEN": "cdv_x"})

    refused = remote.run("list", check=False)

    assert refused.returncode == 1
    assert _one_line(refused.stderr).startswith(
        f"error [url]: cannot reach the codenv server at {url}: "
    )


@pytest.mark.parametrize("how", ["option", "variable"])
def test_a_server_url_without_a_scheme_is_refused(tmp_path: Path, how: str) -> None:
    url = "127.0.0.1:8765"
    extra = {"CODENV_TOKEN": "cdv_x"} | ({"CODENV_URL": url} if how == "variable" else {})
    remote = Node(tmp_path / "home", UNUSED_INDEX, extra)

    refused = remote.run(*(["--url", url] if how == "option" else []), "list", check=False)

    assert refused.returncode == 2
    line = _one_line(refused.stderr)
    assert line.startswith("error [url]: the server URL must start with http:// or https://")
    assert "'127.0.0.1:8765'" in line


@pytest.fixture
def broken_home(tmp_path: Path) -> Node:
    """A home whose database file is not a database: an error no service anticipates."""
    node = Node(tmp_path / "home", UNUSED_INDEX)
    node.home.mkdir(mode=0o700)  # private, as codenv wants it: no warning on stderr
    database = node.home / "codenv.db"
    database.write_bytes(b"this is not an SQLite database\n" * 64)
    database.chmod(0o600)
    return node


def test_an_internal_error_is_one_line(broken_home: Node) -> None:
    failed = broken_home.run("list", check=False)

    assert failed.returncode == 1
    line = _one_line(failed.stderr)
    assert line.startswith("error: internal error: DatabaseError: ")
    assert line.endswith("(--debug prints the traceback)")

    as_json = broken_home.run("list", "--json", check=False)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["error"]["code"] == "internal_error"


@pytest.mark.parametrize("how", ["option", "variable"])
def test_debug_prints_the_traceback(broken_home: Node, how: str) -> None:
    if how == "variable":
        broken_home.environ_extra["CODENV_DEBUG"] = "1"
    args = ["--debug", "list"] if how == "option" else ["list"]

    failed = broken_home.run(*args, check=False)

    assert failed.returncode == 1
    assert failed.stderr.startswith("Traceback (most recent call last):")
    assert "sqlite3.DatabaseError" in failed.stderr
    assert failed.stderr.splitlines()[-1].startswith("error: internal error: DatabaseError: ")


def test_debug_prints_the_traceback_of_a_codenv_error_too(tmp_path: Path) -> None:
    node = Node(tmp_path / "home", UNUSED_INDEX)

    plain = node.run("show", "nothing", check=False)
    debugged = node.run("--debug", "show", "nothing", check=False)

    assert (plain.returncode, plain.stderr) == (3, "error [name]: no code env named 'nothing'\n")
    assert debugged.returncode == 3
    assert "Traceback (most recent call last):" in debugged.stderr
    assert debugged.stderr.endswith("error [name]: no code env named 'nothing'\n")


def test_serve_says_when_its_port_is_taken(node: Node) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = node.run("serve", "--port", str(port), check=False, timeout=60)
    assert result.returncode == 5
    assert result.stderr.strip() == (
        f"error [port]: port {port} on 127.0.0.1 is already in use (another codenv serve?); "
        "choose another with --port"
    )
