"""Following a build from the CLI: its steps as they happen, a live tail, the outcome."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from codenv.domain.errors import BuildCancelled, BuildFailed

if TYPE_CHECKING:
    from rich.console import Console

    from codenv.cli.backend import Backend

FINISHED = ("succeeded", "failed", "cancelled")


def follow_log(backend: Backend, build_id: str, interval: float) -> Iterator[str]:
    """The build's log as it is appended, until the build has ended and all is read."""
    offset = 0
    while True:
        done = backend.build(build_id)["status"] in FINISHED
        text, offset = backend.read_log(build_id, offset)
        if text:
            yield text
        if done:
            return
        time.sleep(interval)


def _show(console: Console, text: str, verbose: bool) -> str:
    last = ""
    for line in text.splitlines():
        if line.startswith("==>") or verbose:
            console.print(line, highlight=False, markup=False)
        if line.strip():
            last = line.strip()
    return last


def wait_for_build(
    backend: Backend, build_id: str, console: Console, *, verbose: bool = False
) -> dict[str, Any]:
    """Print the build's progress until it ends; its outcome (see `outcome`)."""
    status = console.status("queued", spinner="dots") if console.is_terminal else None
    if status is not None:
        status.start()
    try:
        interval = 0.2 if backend.remote else 0.05
        for text in follow_log(backend, build_id, interval):
            last = _show(console, text, verbose)
            if status is not None and last:
                status.update(last[:120])
    finally:
        if status is not None:
            status.stop()
    backend.build_done(build_id)
    return outcome(backend.build(build_id))


def outcome(build: dict[str, Any]) -> dict[str, Any]:
    """The ended build; BuildFailed or BuildCancelled (exit code 4) unless it succeeded."""
    if build["status"] == "failed":
        raise BuildFailed(f"build {build['id']} failed: {build['error']}")
    if build["status"] == "cancelled":
        raise BuildCancelled(f"build {build['id']} was cancelled")
    return build
