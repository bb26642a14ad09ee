"""What every CLI command shares: where it acts (a home, or a server), how it prints."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
import typer
from rich.console import Console, RenderableType

from codenv.domain.errors import CodenvError

if TYPE_CHECKING:
    from codenv.cli.local_backend import LocalBackend
    from codenv.cli.remote_backend import RemoteBackend
    from codenv.services.app import Codenv, QueueKind

TOKEN_VARIABLE = "CODENV_TOKEN"  # noqa: S105 (a variable name)


def token_file() -> Path:
    return Path(platformdirs.user_config_dir("codenv", appauthor=False)) / "token"


def read_token() -> str:
    """The API token: CODENV_TOKEN, else the user's config file (`codenv login` writes it)."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token and token_file().exists():
        token = token_file().read_text("utf-8").strip()
    if not token:
        raise CodenvError(
            f"remote mode needs an API token: set {TOKEN_VARIABLE} or write it to {token_file()}",
            field="token",
        )
    return token


@dataclass
class CliState:
    home: Path | None = None
    url: str | None = None
    json: bool = False
    backend_: LocalBackend | RemoteBackend | None = None
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def backend(self, queue: QueueKind = "threads") -> LocalBackend | RemoteBackend:
        """The home itself (local mode) or the server at --url (remote mode)."""
        if self.backend_ is None:
            if self.url:
                from codenv.cli.remote_backend import RemoteBackend

                self.backend_ = RemoteBackend(self.url, read_token())
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

    def emit(self, data: Any, human: RenderableType) -> None:
        """Print `data` as JSON with --json, else the human rendering."""
        if self.json:
            print_json(data)
        else:
            self.out.print(human, highlight=False)

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
