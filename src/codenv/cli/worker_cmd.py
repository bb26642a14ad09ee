"""`codenv worker`: run builds from the broker's build queue (CODENV_BROKER_URL)."""

from __future__ import annotations

from typing import Annotated

import typer

from codenv.cli.context import state


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            help="Builds run at once (default: CODENV_MAX_PARALLEL_BUILDS, 2).",
            show_default=False,
        ),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            "-Q",
            help="The broker queue to take builds from (default: CODENV_BUILD_QUEUE, "
            "codenv-builds).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the builds sent to the broker (CODENV_BROKER_URL) until stopped.

    The worker is `celery@<host>` on the builds it runs. Workers on other hosts share the
    database and the broker. SIGTERM takes no new build and lets the running ones finish; the
    builds of a worker killed mid-build fail when their lease expires (CODENV_LEASE_SECONDS)."""
    from codenv.services.workers import serve_builds

    app = state().open()
    code = serve_builds(app, concurrency=concurrency, queue=queue)
    if code:
        raise typer.Exit(code)


def register(root: typer.Typer) -> None:
    root.command()(worker)
