"""`codenv settings`: the node's code env settings (install options, requests)."""

from __future__ import annotations

from typing import Annotated

import typer

from codenv.cli.context import JsonOption, state
from codenv.domain.secrets import mask_secrets

app = typer.Typer(help="The node's code env settings.")
Tokens = Annotated[
    list[str] | None, typer.Argument(help="Options as for pip, after --; none to clear.")
]


@app.command("show")
def show(json_output: bool = JsonOption) -> None:
    """Install options, venv options, default index, requests (credentials masked)."""
    cli = state(json_output)
    found = cli.backend().settings()
    human = "\n".join(
        f"{key}: {' '.join(value) if isinstance(value, list) else value}"
        for key, value in found.items()
    )
    cli.emit(found, human)


@app.command("set-install-options")
def set_install_options(tokens: Tokens = None) -> None:
    """Options for every install: `codenv settings set-install-options -- --index-url URL`."""
    cli = state()
    saved = cli.backend().set_install_options(list(tokens or ()))
    shown = mask_secrets(" ".join(saved)) or "(none)"
    cli.say(f"install options: {shown}")


@app.command("set-venv-options")
def set_venv_options(tokens: Tokens = None) -> None:
    """Options for creating venvs (`--system-site-packages`)."""
    cli = state()
    saved = cli.backend().set_venv_options(list(tokens or ()))
    cli.say(f"venv options: {' '.join(saved) or '(none)'}")


@app.command("requests")
def requests(allow: Annotated[bool, typer.Option("--allow/--deny")]) -> None:
    """Allow (or not) users without the create right to request a code env."""
    cli = state()
    cli.backend().set_requests(allow)
    cli.say("requests allowed" if allow else "requests turned off")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="settings")
