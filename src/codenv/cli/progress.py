"""Following a build from the CLI: its steps as they happen, a live tail, the outcome."""

from __future__ import annotations

from rich.console import Console

from codenv.builds.logs import follow
from codenv.domain.errors import BuildFailed
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.builds import get_build, log_path
from codenv.services.views import BuildInfo


def _show(console: Console, text: str, verbose: bool) -> str:
    last = ""
    for line in text.splitlines():
        if line.startswith("==>") or verbose:
            console.print(line, highlight=False, markup=False)
        if line.strip():
            last = line.strip()
    return last


def wait_for_build(
    app: Codenv, actor: Actor, build_id: str, console: Console, *, verbose: bool = False
) -> BuildInfo:
    """Print the build's progress until it ends; BuildFailed (exit code 4) when it failed."""
    status = console.status("queued", spinner="dots") if console.is_terminal else None
    if status is not None:
        status.start()
    try:
        finished = lambda: get_build(app, actor, build_id).finished  # noqa: E731
        for text in follow(log_path(app, build_id), finished):
            last = _show(console, text, verbose)
            if status is not None and last:
                status.update(last[:120])
    finally:
        if status is not None:
            status.stop()
    app.queue.wait(build_id)
    build = get_build(app, actor, build_id)
    if build.status == "failed":
        raise BuildFailed(f"build {build_id} failed: {build.error}")
    return build
