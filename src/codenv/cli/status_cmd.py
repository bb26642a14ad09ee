"""`codenv status`: workers, claimed builds and their leases, the queue, execution nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from codenv.cli.context import JsonOption, state

if TYPE_CHECKING:
    from rich.console import RenderableType

WORKERS = ("worker", "host", "queues", "concurrency", "last seen", "alive")
BUILDS = ("build", "env", "status", "step", "worker", "host", "lease expires in")
NODES = ("node", "host", "last seen", "agreement", "behind", "failed")


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.0f} s ago"


def _table(title: str, headers: tuple[str, ...], rows: list[list[str]]) -> RenderableType:
    """A table, or one line saying there is nothing to show."""
    from rich.table import Table

    if not rows:
        return f"{title}: none"
    table = Table(*headers, title=title, title_justify="left")
    for row in rows:
        table.add_row(*row)
    return table


def _worker_row(worker: dict[str, Any]) -> list[str]:
    alive = "yes" if worker["alive"] else "NO: no heartbeat for a lease"
    return [
        worker["name"],
        worker["host"],
        ", ".join(worker["queues"]),
        str(worker["concurrency"]),
        _ago(worker["seen_seconds_ago"]),
        alive,
    ]


def _build_row(build: dict[str, Any]) -> list[str]:
    return [
        build["id"],
        build["env"],
        build["status"],
        build["step"],
        build["worker"] or "",
        build["host"] or "",
        f"{build['expires_in_seconds']:.0f} s",
    ]


def _node_row(node: dict[str, Any]) -> list[str]:
    envs = node["envs"]
    failed = ", ".join(f"{item['env']}@{item['revision']}" for item in envs["failed"])
    return [
        node["name"],
        node["host"],
        _ago(node["seen_seconds_ago"]),
        str(len(envs["agreement"])),
        ", ".join(envs["behind"]) or "-",
        failed or "-",
    ]


def _queue_line(queue: dict[str, Any]) -> str:
    line = f"Queue: {queue['queued']} build(s) queued, claimed by no worker yet"
    broker = queue["broker"]
    if broker is None:
        return line + " (no broker: builds run in the servers' own threads)"
    if broker["error"]:
        return line + f"; broker queue {broker['queue']}: unreachable ({broker['error']})"
    return line + f"; broker queue {broker['queue']}: {broker['messages']} message(s)"


def _view(status: dict[str, Any]) -> RenderableType:
    from rich.console import Group

    return Group(
        _table("Workers", WORKERS, [_worker_row(item) for item in status["workers"]]),
        _table("Claimed builds", BUILDS, [_build_row(item) for item in status["builds"]]),
        _queue_line(status["queue"]),
        _table("Nodes", NODES, [_node_row(item) for item in status["nodes"]]),
    )


def status(json_output: bool = JsonOption) -> None:
    """What runs beyond this process, as the shared database records it: workers and whether
    their heartbeat is alive, builds claimed under a lease, queued builds (and the messages in
    the broker's queue), execution nodes with their envs in agreement with the active
    revisions, behind them, or failed (`codenv sync`). Run it where a server or a worker runs."""
    from codenv.services.actor import Actor
    from codenv.services.cluster import cluster_status

    cli = state(json_output)
    found = cluster_status(cli.open(), Actor.local_admin())
    cli.emit(found, lambda: _view(found))


def register(root: typer.Typer) -> None:
    root.command()(status)
