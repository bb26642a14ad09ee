"""`codenv run`, `codenv path` and `codenv kernels`: using an env (on the node itself)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from codenv.cli.context import EnvRef, JsonOption, state

if TYPE_CHECKING:
    from codenv.services.runtime import RunContext

kernels_app = typer.Typer(help="Jupyter kernels of envs with Jupyter support.")
Prefix = Annotated[
    Path | None,
    typer.Option("--prefix", help="A Jupyter installation's prefix (default: your user's)."),
]


def run(
    name: EnvRef,
    command: Annotated[list[str], typer.Argument(help="The command and its arguments.")],
) -> None:
    """Run a command in the env's active revision: `codenv run NAME -- CMD ARGS...`, or in its
    revision N: `codenv run NAME@N -- CMD ARGS...`.

    VIRTUAL_ENV and PATH point at the revision, the env's resources env vars are set; stdin,
    stdout, stderr and the exit code are the command's own.
    """
    cli = state()
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise typer.BadParameter("give the command to run after --", param_hint="COMMAND")
    context = _run_context(name)
    cli.close()
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, context.environ)  # noqa: S606 (argv list, no shell)
    except OSError as error:
        sys.stderr.write(f"error: cannot run {command[0]!r}: {error.strerror}\n")
        raise typer.Exit(127) from error


def path(name: EnvRef, json_output: bool = JsonOption) -> None:
    """Print the python of the env's active revision (of revision N for NAME@N)."""
    cli = state(json_output)
    python = str(_run_context(name).python)
    cli.emit({"env": name, "python": python}, python)


def _run_context(name: str) -> RunContext:
    from codenv.services import runtime
    from codenv.services.actor import Actor

    return runtime.run_context(state().open(), Actor.local_admin(), name)


@kernels_app.command("list")
def list_kernels(json_output: bool = JsonOption) -> None:
    """The kernelspecs of envs with Jupyter support."""
    cli = state(json_output)
    found = cli.backend().kernels()
    lines = "\n".join(f"{k['name']}  {k['display_name']}  {k['path']}" for k in found)
    cli.emit(found, lines or "no kernels (no env has Jupyter support)")


@kernels_app.command("install")
def install_kernel(name: EnvRef, prefix: Prefix = None) -> None:
    """Expose the env's kernel to a Jupyter installation (a link that follows updates); NAME@N:
    the kernel of version N."""
    from codenv.services import kernels
    from codenv.services.actor import Actor

    cli = state()
    link = kernels.install_kernel(cli.open(), Actor.local_admin(), name, prefix)
    cli.say(f"installed kernel {link.name} in {link.parent}")


@kernels_app.command("remove")
def remove_kernel(name: EnvRef, prefix: Prefix = None) -> None:
    """Remove the env's kernel from a Jupyter installation."""
    from codenv.services import kernels
    from codenv.services.actor import Actor

    cli = state()
    removed = kernels.remove_kernel(cli.open(), Actor.local_admin(), name, prefix)
    where = kernels.target_dir(prefix)
    cli.say(f"removed from {where}" if removed else f"not installed in {where}")


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(run)
    app.command()(path)
    app.add_typer(kernels_app, name="kernels")
