"""`codenv pythons` and `codenv sets`: what the node offers to build envs with."""

from __future__ import annotations

from typing import Annotated

import typer

from codenv.cli.context import JsonOption, state
from codenv.cli.render import pythons_table, sets_text

Interpreter = Annotated[
    str, typer.Argument(help="The absolute path of the interpreter.", show_default=False)
]
pythons = typer.Typer(help="Python interpreters found on this node.", invoke_without_command=True)


@pythons.callback()
def list_pythons(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Also list refused ones.")] = False,
    json_output: bool = JsonOption,
) -> None:
    """List the interpreters: version, path, where found, development headers."""
    if ctx.invoked_subcommand is not None:
        return
    cli = state(json_output)
    found = cli.backend().pythons()
    cli.emit(found, lambda: pythons_table(found, show_all))


@pythons.command("add")
def add_python(path: Interpreter, json_output: bool = JsonOption) -> None:
    """Add an interpreter by absolute path (CPython 3.6 or newer)."""
    cli = state(json_output)
    added = cli.backend().add_python(path)
    note = " (deprecated)" if added["deprecated"] else ""
    cli.emit(added, f"added Python {added['version']}{note}: {added['path']}")


@pythons.command("remove")
def remove_python(path: Interpreter) -> None:
    """Forget an interpreter an administrator added."""
    cli = state()
    cli.backend().remove_python(path)
    cli.say(f"removed {path}")


def list_sets(json_output: bool = JsonOption) -> None:
    """List the package-set catalog: id, title, Python range, variants, requirements."""
    cli = state(json_output)
    found = cli.backend().sets()
    cli.emit(found, sets_text(found))


def register(app: typer.Typer) -> None:
    app.add_typer(pythons, name="pythons")
    app.command("sets")(list_sets)
