"""The `codenv` command: local mode acts on --home / CODENV_HOME as the node's administrator."""

from __future__ import annotations

import gc
import importlib
import sys
import traceback
from collections.abc import Iterator, MutableMapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import click
import typer
import typer.main
from typer.core import TyperGroup

from codenv.cli.context import STATE, print_json
from codenv.domain.errors import CodenvError
from codenv.domain.secrets import mask_secrets

# The module of each command, in the order `--help` lists them. A module is imported, and its
# commands made, when one of them runs or is listed: a command pays for its own imports only.
COMMANDS = {
    "sets": "pythons_cmd",
    "create": "envs_cmd",
    "save": "envs_cmd",
    "update": "envs_cmd",
    "show": "envs_cmd",
    "list": "envs_cmd",
    "delete": "envs_cmd",
    "installed": "revisions_cmd",
    "revisions": "revisions_cmd",
    "rollback": "revisions_cmd",
    "builds": "revisions_cmd",
    "logs": "revisions_cmd",
    "cancel": "revisions_cmd",
    "run-build": "revisions_cmd",
    "export": "bundles_cmd",
    "import": "bundles_cmd",
    "images": "containers_cmd",
    "containers": "containers_cmd",
    "run": "runtime_cmd",
    "path": "runtime_cmd",
    "serve": "serve_cmd",
    "worker": "worker_cmd",
    "sync": "sync_cmd",
    "status": "status_cmd",
    "pythons": "pythons_cmd",
    "kernels": "runtime_cmd",
    "resources": "resources_cmd",
    "settings": "settings_cmd",
    "node": "node_cmd",
    "sessions": "sessions_cmd",
}


@cache
def commands_of(module: str) -> dict[str, click.Command]:
    """The click commands a module of this package registers."""
    commands = typer.Typer()
    importlib.import_module(f"codenv.cli.{module}").register(commands)
    return dict(typer.main.get_group(commands).commands)


class LazyCommands(MutableMapping[str, click.Command]):
    """The root's commands by name, each made on first use (click only reads them)."""

    def __getitem__(self, name: str) -> click.Command:
        if name not in COMMANDS:
            raise KeyError(name)
        return commands_of(COMMANDS[name])[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        raise TypeError(f"list the command {name!r} in codenv.cli.main.COMMANDS")

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"the command {name!r} is listed in codenv.cli.main.COMMANDS")

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class LazyGroup(TyperGroup):
    """The root command: its subcommands come from COMMANDS, made when used."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def _set_debug(value: bool) -> bool:
    # At parse time, before a command's module is imported: a failing import is reported too.
    STATE.debug = value
    return value


app = typer.Typer(
    name="codenv",
    cls=LazyGroup,
    help="Manage shared Python code environments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="CODENV_HOME", help="codenv's data directory."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="CODENV_URL",
            help="A codenv server to act on (remote mode; token from CODENV_TOKEN).",
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="CODENV_DEBUG",
            callback=_set_debug,
            is_eager=True,
            help="Print an error's full traceback too.",
        ),
    ] = False,
) -> None:
    # `debug` is in STATE already: its callback ran at parse time.
    STATE.home = home
    STATE.url = url


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def report(error: Exception) -> int:
    """Print the error as one line (and as JSON on stdout with --json); its exit code.

    A CodenvError says what the user can act on; anything else is an internal error, whose
    traceback `--debug` prints.
    """
    if STATE.debug:
        traceback.print_exception(error)
    if isinstance(error, CodenvError):
        details, exit_code = error.to_dict(), error.exit_code
    else:
        hint = "" if STATE.debug else " (--debug prints the traceback)"
        message = f"internal error: {type(error).__name__}: {mask_secrets(str(error))}{hint}"
        details, exit_code = {"code": "internal_error", "message": message, "field": None}, 1
    if STATE.json:
        print_json({"error": details})
    field = f" [{details['field']}]" if details["field"] else ""
    sys.stderr.write(f"error{field}: {_one_line(str(details['message']))}\n")
    return exit_code


def run() -> None:
    """Entry point: every error ends as one line on stderr and an exit code.

    Usage errors are Typer's own (exit code 2, with the usage line).
    """
    try:
        try:
            app()
        finally:
            STATE.close()
    except Exception as error:  # no error escapes as a traceback
        sys.exit(report(error))
    finally:
        # The process ends: the collections Python runs while it shuts down would walk every
        # object the imports made (SQLAlchemy's ORM: ~0.06 s here) to free nothing anyone
        # needs. Frozen objects are left out of them; streams are flushed and exit handlers
        # run as before.
        gc.freeze()
