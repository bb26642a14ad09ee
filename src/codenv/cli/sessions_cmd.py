"""`codenv sessions`: the browser sessions of the console and the API (administrators)."""

from __future__ import annotations

from typing import Annotated

import typer

from codenv.cli.context import JsonOption, plural, state
from codenv.cli.render import sessions_table
from codenv.domain.errors import InvalidInput

app = typer.Typer(help="Browser sessions: list them, end them (administrators).")

# Session ids are rows: what the database holds (a signed 64-bit integer), as the API bounds them.
MAX_ID = 2**63 - 1


@app.command("list")
def list_sessions(
    user: Annotated[
        str | None, typer.Option("--user", help="Only this user's sessions.", show_default=False)
    ] = None,
    json_output: bool = JsonOption,
) -> None:
    """Live sessions, the most recently seen first."""
    cli = state(json_output)
    found = cli.backend().sessions(user)
    cli.emit(found, lambda: sessions_table(found))


@app.command("end")
def end(
    session_id: Annotated[
        int | None,
        typer.Argument(
            help="The session to end (`codenv sessions list`).",
            min=1,
            max=MAX_ID,
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="End every session of this user.", show_default=False),
    ] = None,
) -> None:
    """End the session SESSION_ID (from `codenv sessions list`), or with --user all of a
    user's: that browser is logged out at its next request."""
    cli = state()
    if (session_id is None) == (user is None):
        raise InvalidInput("give a SESSION_ID or --user NAME (one of them)", field="session")
    if user is not None:
        ended = cli.backend().end_user_sessions(user)
        cli.say(f"ended {plural(ended, 'session')} of {user}")
    else:
        assert session_id is not None
        info = cli.backend().end_session(session_id)
        cli.say(f"ended session {info['id']} of {info['user']}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sessions")
