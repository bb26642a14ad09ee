"""Build logs as users read them: a chunk from an offset, or followed while the build runs.

The one reader of build logs for every adapter (API, console, CLI in both modes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from codenv.builds.logs import read_from
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.builds import get_build, log_path

# Bounded so that a client asking for a whole multi-megabyte log gets it in pieces.
MAX_CHUNK = 1 << 20


def read_log(app: Codenv, actor: Actor, build_id: str, offset: int = 0) -> tuple[str, int]:
    """The build's log text appended since `offset`, and the offset to ask from next."""
    get_build(app, actor, build_id)
    return read_from(log_path(app, build_id), max(0, offset), MAX_CHUNK)


def follow_log(app: Codenv, actor: Actor, build_id: str, interval: float = 0.2) -> Iterator[str]:
    """The build's log as it is appended, until the build has ended and everything is read.

    Blocking (it sleeps between reads): adapters on an event loop iterate it in a thread.
    """
    offset = 0
    while True:
        done = get_build(app, actor, build_id).finished
        text, offset = read_log(app, actor, build_id, offset)
        if text:
            yield text
        if done and not text:
            return
        if not text:
            time.sleep(interval)
