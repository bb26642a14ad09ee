"""What every CLI command shares: the home it acts on, the app it opens, how it prints."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, RenderableType

from codenv.services.actor import Actor
from codenv.services.app import Codenv, QueueKind, open_codenv
from codenv.settings import load_settings


@dataclass
class CliState:
    home: Path | None = None
    json: bool = False
    app: Codenv | None = None
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def open(self, queue: QueueKind = "threads") -> Codenv:
        if self.app is None:
            self.app = open_codenv(load_settings(self.home), queue=queue)
        return self.app

    @property
    def actor(self) -> Actor:
        return Actor.local_admin()

    def emit(self, data: Any, human: RenderableType) -> None:
        """Print `data` as JSON with --json, else the human rendering."""
        if self.json:
            print_json(data)
        else:
            self.out.print(human, highlight=False)

    def close(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None


STATE = CliState()


def state(json_output: bool = False) -> CliState:
    STATE.json = STATE.json or json_output
    return STATE


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


JsonOption = typer.Option(False, "--json", help="Print JSON for scripts instead of tables.")
