"""The `codenv` command: local mode acts on --home / CODENV_HOME as the node's administrator."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from codenv.cli import (
    envs_cmd,
    pythons_cmd,
    resources_cmd,
    revisions_cmd,
    runtime_cmd,
    serve_cmd,
    settings_cmd,
)
from codenv.cli.context import STATE
from codenv.domain.errors import CodenvError

app = typer.Typer(
    name="codenv",
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
) -> None:
    STATE.home = home
    STATE.url = url


pythons_cmd.register(app)
envs_cmd.register(app)
revisions_cmd.register(app)
runtime_cmd.register(app)
resources_cmd.register(app)
settings_cmd.register(app)
serve_cmd.register(app)


def run() -> None:
    """Entry point: one place turns every CodenvError into a one-line error and an exit code.

    Usage errors are Typer's own (exit code 2, with the usage line).
    """
    try:
        app()
    except CodenvError as error:
        if STATE.json:
            sys.stdout.write(json.dumps({"error": error.to_dict()}, indent=2) + "\n")
        field = f" [{error.field}]" if error.field else ""
        STATE.err.print(f"error{field}: {error.message}", highlight=False, markup=False)
        sys.exit(error.exit_code)
    finally:
        STATE.close()
