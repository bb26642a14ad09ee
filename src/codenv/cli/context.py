"""What every CLI command shares: where it acts (a home, or a server), how it prints.

Every module of the CLI is imported at each start, `--help` included, so this one imports no
service, no HTTP client and no Rich: those load when a command needs them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from typer.core import TyperGroup

from codenv.domain.errors import CodenvError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from codenv.cli.backend import Backend
    from codenv.services.app import Codenv, QueueKind


@dataclass
class CliState:
    home: Path | None = None
    url: str | None = None
    json: bool = False
    debug: bool = False
    backend_: Backend | None = None

    def backend(self, queue: QueueKind = "threads") -> Backend:
        """The home itself (local mode) or the server at --url (remote mode)."""
        if self.backend_ is None:
            if self.url:
                from codenv.cli.remote_backend import RemoteBackend

                self.backend_ = RemoteBackend.connect(self.url)
            else:
                from codenv.cli.local_backend import LocalBackend

                self.backend_ = LocalBackend(self.home, queue)
        return self.backend_

    def open(self, queue: QueueKind = "threads") -> Codenv:
        """The home's application context, for what only runs on the node itself."""
        if self.url:
            raise CodenvError(
                "this command runs on the node itself: use it there, without --url", field="url"
            )
        from codenv.cli.local_backend import LocalBackend

        backend = self.backend(queue)
        assert isinstance(backend, LocalBackend)
        return backend.app

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(soft_wrap=True)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, soft_wrap=True)

    def say(self, text: str) -> None:
        """One plain line on stdout (no markup: names and paths are printed as they are)."""
        sys.stdout.write(text + "\n")

    def emit(self, data: Any, human: str | Callable[[], RenderableType]) -> None:
        """Print `data` as JSON with --json, else the human rendering (built only then)."""
        if self.json:
            print_json(data)
        elif isinstance(human, str):
            self.say(human)
        else:
            self.out.print(human(), highlight=False)

    def close(self) -> None:
        if self.backend_ is not None:
            self.backend_.close()
            self.backend_ = None


STATE = CliState()


def state(json_output: bool = False) -> CliState:
    STATE.json = STATE.json or json_output
    return STATE


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


JsonOption = typer.Option(False, "--json", help="Print JSON for scripts instead of tables.")
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")]
EnvName = Annotated[str, typer.Argument(help="The name of the code env.", show_default=False)]
# NAME, or NAME@N: revision N (a version, on automation nodes), whichever is active.
EnvRef = Annotated[
    str,
    typer.Argument(
        help="The code env, or NAME@N for its revision N.", show_default=False, metavar="NAME"
    ),
]


class ListByDefault(TyperGroup):
    """A group whose `list` command is implied before anything that is none of its commands:
    `codenv revisions NAME` lists, `codenv revisions remove NAME N` removes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["list", *args]
        return super().parse_args(ctx, args)


def plural(count: int, noun: str) -> str:
    """`1 package`, `2 packages`: a count with its noun."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
