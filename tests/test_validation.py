"""Bad input is refused before anything is built: the field is named and nothing is created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Node
from support.samples import write_node_sets

NEW_ONLY_SET = {
    "id": "new-only",
    "title": "New only",
    "python": {"min": "3.99", "max": "3.99"},
    "variants": {"cpu": ["alpha"]},
}


def _assert_nothing_created(node: Node, expected_envs: int = 0) -> None:
    assert len(json.loads(node.run("list", "--json").stdout)) == expected_envs
    envs_dir = node.home / "envs"
    assert len(list(envs_dir.iterdir())) == expected_envs


def _refused(node: Node, *args: str) -> str:
    result = node.run(*args, check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, "the error is one line"
    return result.stderr


@pytest.mark.parametrize(
    ("name", "reason"),
    [("bad name", "digits, underscores and hyphens"), ("x" * 65, "1 to 64"), ("dé", "A-Z")],
)
def test_invalid_names(node: Node, newest: str, name: str, reason: str) -> None:
    error = _refused(node, "create", name, "--python", newest)
    assert "error [name]" in error and reason in error
    _assert_nothing_created(node)


def test_name_taken_case_insensitively(node: Node, newest: str) -> None:
    node.run("create", "Demo", "--python", newest, "--no-core-packages")
    error = _refused(node, "create", "demo", "--python", newest)
    assert "error [name]" in error and "already exists" in error
    _assert_nothing_created(node, expected_envs=1)


def test_python_not_installed(node: Node) -> None:
    error = _refused(node, "create", "demo", "--python", "3.99")
    assert "error [python]" in error
    assert "not installed" in error and "development headers" in error
    assert "installed: 3." in error
    _assert_nothing_created(node)


def test_set_incompatible_with_python(node: Node, newest: str, oldest: str) -> None:
    write_node_sets(node.home, [{**NEW_ONLY_SET, "python": {"min": newest, "max": newest}}])
    error = _refused(node, "create", "demo", "--python", oldest, "--set", "new-only")
    assert "error [sets]" in error
    assert f"compatible installed versions: {newest}" in error
    _assert_nothing_created(node)


@pytest.mark.parametrize(
    ("requirements", "expected"),
    [
        ("alpha\n\nfoo bar\n", "line 3: invalid requirement 'foo bar'"),
        ("alpha\n--index-url http://example.invalid/simple\n", "line 2: option '--index-url'"),
        ("# comment\n-r other.txt\n", "line 2: option '-r'"),
        ("codenv-runtime>=5\n", "conflicts with the base package codenv-runtime==0.1.0"),
        ("/nowhere/pkg-1.0.zip\n", "line 1: local sources (/nowhere/pkg-1.0.zip) are not allowed"),
        ("-e /nowhere/src\n", "codeEnvsSettings.allowedLocalSourceRoots"),
    ],
)
def test_requested_packages_refused(
    node: Node, newest: str, tmp_path: Path, requirements: str, expected: str
) -> None:
    file = tmp_path / "requirements.txt"
    file.write_text(requirements)
    error = _refused(node, "create", "demo", "--python", newest, "-r", str(file))
    assert "error [requested]" in error and expected in error
    _assert_nothing_created(node)


def test_save_refuses_invalid_spec_and_keeps_the_saved_one(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    error = _refused(node, "save", "demo", "--add", "alpha[")
    assert error.startswith("error [add]: --add 'alpha[': invalid requirement")
    assert json.loads(node.run("show", "demo", "--json").stdout)["spec"]["requested"] == ""


def test_json_errors_carry_code_and_field(node: Node) -> None:
    result = node.run("show", "missing", "--json", check=False)
    assert result.returncode == 3
    assert json.loads(result.stdout) == {
        "error": {"code": "not_found", "message": "no code env named 'missing'", "field": "name"}
    }
