"""`codenv sync`: this home as an execution node that follows the shared database."""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from codenv.cli.context import JsonOption, plural, state

if TYPE_CHECKING:
    from rich.table import Table

POLL_SECONDS = 5
FAILED_EXIT_CODE = 4  # as a failed build's


def _say(text: str) -> None:
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {text}\n")
    sys.stderr.flush()


def _outcomes_table(report: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table("env", "revision", "holds", "action", "seconds", "error")
    table.columns[-1].overflow = "fold"
    for env in report["envs"]:
        error = (env["error"] or "").strip().splitlines()
        table.add_row(
            env["env"],
            str(env["revision"]),
            "-" if env["holds"] is None else str(env["holds"]),
            env["action"],
            f"{env['seconds']:.1f}",
            error[0] if error else "",
        )
    return table


def sync(
    once: Annotated[
        bool, typer.Option("--once", help="One pass, then exit (non-zero if an env failed).")
    ] = False,
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            envvar="CODENV_NODE_NAME",
            help="This node's name in `codenv status` (default: the host name).",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        int,
        typer.Option("--interval", min=1, max=3600, help="Seconds between passes."),
    ] = POLL_SECONDS,
    json_output: bool = JsonOption,
) -> None:
    """Make this home's envs agree with the database (CODENV_DATABASE_URL, shared): each env's
    active revision installed from this node's own cache (its index only for what the cache
    lacks), `current` switched, revisions no longer kept removed, what it holds recorded.
    A failed install keeps the env's previous `current`. Without --once, a pass every
    --interval seconds until SIGTERM."""
    from codenv.services.sync import follow, node_name, sync_once

    name = node_name(node)
    cli = state(json_output)
    app = cli.open()
    stop = threading.Event()
    if not once:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda _signal, _frame: stop.set())
        _say(f"node {name}: following the database every {interval} s")
        follow(app, name, interval, stop, _say)
        return
    report = sync_once(app, name, _say).to_dict()
    cli.emit(report, lambda: _outcomes_table(report))
    failed = [env["env"] for env in report["envs"] if env["action"] == "failed"]
    if failed:
        sys.stderr.write(
            f"error: {plural(len(failed), 'code env')} failed on node {name}: "
            f"{', '.join(failed)} (their previous `current` stays; log: builds/sync/ENV.log)\n"
        )
        raise typer.Exit(FAILED_EXIT_CODE)


def register(root: typer.Typer) -> None:
    root.command()(sync)
