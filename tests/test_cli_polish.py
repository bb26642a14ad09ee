"""The rough edges a new user hits in the CLI (issue 11, point 6): help, --json, names, wording."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
import typer.main

from codenv.cli.main import app
from conftest import Node


def _commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    if not isinstance(command, click.Group):
        return [(path, command)]
    context = click.Context(command)
    found = []
    for name in command.list_commands(context):
        sub = command.get_command(context, name)
        assert sub is not None
        found += _commands(sub, f"{path} {name}")
    return found


COMMANDS = _commands(typer.main.get_command(app), "codenv")


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{path} {param.opts[0]}"
        for path, command in COMMANDS
        for param in command.params
        if not getattr(param, "help", None)
    ]
    assert missing == []


def test_argument_help_is_printed(node: Node) -> None:
    # click 8.5 dropped the help typer 0.20 gives arguments: --help showed none.
    node.environ_extra["COLUMNS"] = "200"
    help_text = node.run("save", "--help").stdout
    assert "The name of the code env." in help_text
    assert "After --: the options of --install-options or --venv-options." in help_text
    assert "Replace all the requested packages with the lines of this file" in help_text


READ_COMMANDS = [
    "sets", "show", "list", "installed", "revisions list", "builds", "logs", "path",
    "pythons", "kernels list", "resources script", "resources vars", "resources ls",
    "resources kept", "sessions list", "settings show",
]  # fmt: skip


@pytest.mark.parametrize("read", READ_COMMANDS)
def test_every_read_command_takes_json(read: str) -> None:
    command = typer.main.get_command(app)
    for name in read.split():
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None, read
        command = found
    assert any("--json" in param.opts for param in command.params)


@pytest.fixture
def built(node: Node, newest: str, tmp_path: Path) -> Node:
    """An env `demo` built from a requirements file of two lines (a comment, then alpha)."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# the sample package\nalpha\n")
    node.run("create", "demo", "--python", newest, "--no-core-packages", "-r", str(requirements))
    return node


def test_logs_and_path_print_json(built: Node) -> None:
    logs = json.loads(built.run("logs", "demo", "--json").stdout)
    assert logs["build"]["status"] == "succeeded"
    assert "done: revision 1 is active" in logs["log"]
    followed = json.loads(built.run("logs", "demo", "--follow", "--json").stdout)
    assert followed["log"] == logs["log"]

    path = json.loads(built.run("path", "demo", "--json").stdout)
    assert path == {"env": "demo", "python": str(built.python("demo").parent / "python")}


def test_save_r_says_it_replaces_the_requested_packages(built: Node, tmp_path: Path) -> None:
    replacement = tmp_path / "other.txt"
    replacement.write_text("gamma\n")

    saved = built.run("save", "demo", "-r", str(replacement))

    assert f"the requested packages are now those of {replacement}" in saved.stderr
    assert "--add and --remove" in saved.stderr
    shown = json.loads(built.run("show", "demo", "--json").stdout)
    assert shown["spec"]["requested"] == "gamma\n"


def test_an_add_error_names_the_value_typed(built: Node) -> None:
    refused = built.run("save", "demo", "--add", "beta", "--add", "foo bar", check=False)

    assert refused.returncode == 2
    assert refused.stderr.startswith("error [add]: --add 'foo bar': invalid requirement")
    # The combined list would put it on line 4, a line the user never typed.
    assert "line" not in refused.stderr
    shown = json.loads(built.run("show", "demo", "--json").stdout)
    assert "beta" not in shown["spec"]["requested"]


@pytest.mark.parametrize("name", ["-x", "--help", "-"])
def test_names_starting_with_a_hyphen_are_refused(node: Node, newest: str, name: str) -> None:
    refused = node.run("create", "--python", newest, "--", name, check=False)

    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error [name]: invalid code env name {name!r}")
    assert "not starting with a hyphen" in refused.stderr
    assert json.loads(node.run("list", "--json").stdout) == []


def test_counts_are_singular_for_one(built: Node) -> None:
    log = built.run("logs", "demo").stdout

    assert "1 locked package\n" in log
    assert not re.search(r"\b1 [a-z ]*packages\b", log), log


def test_sets_fit_80_columns_with_labelled_variants(node: Node) -> None:
    node.environ_extra["COLUMNS"] = "80"
    shown = node.run("sets").stdout
    catalog = json.loads(node.run("sets", "--json").stdout)

    assert max(len(line) for line in shown.splitlines()) <= 80
    with_gpu = next(item for item in catalog if "gpu" in item["variants"])
    set_id = with_gpu["id"]
    assert f"  cpu variant (--set {set_id}:cpu, the default)\n" in shown
    assert f"  gpu variant (--set {set_id}:gpu)\n" in shown
    assert f"    {with_gpu['variants']['gpu'][0]}\n" in shown
