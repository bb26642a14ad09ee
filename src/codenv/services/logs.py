"""Build logs as users read them: a chunk from an offset, or followed while the build runs.

The one reader of build logs for every adapter (API, console, CLI in both modes). Logs are
read from the database (services/log_store.py), so any server streams a build that another
host runs; builds logged before that are read from their file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.builds import get_build
from codenv.services.log_store import read_log_text

# Bounded so that a client asking for a whole multi-megabyte log gets it in pieces.
MAX_CHUNK = 1 << 20


def read_log(app: Codenv, actor: Actor, build_id: str, offset: int = 0) -> tuple[str, int]:
    """The build's log text appended since `offset`, and the offset to ask from next.

    Once the build has finished, the text up to the log's very end (its last lines included)."""
    finished = get_build(app, actor, build_id).finished
    return read_log_text(app, build_id, max(0, offset), MAX_CHUNK, finished=finished)


def follow_log(app: Codenv, actor: Actor, build_id: str, interval: float = 0.2) -> Iterator[str]:
    """The build's log as it is appended, until the build has ended and everything is read.

    Blocking (it sleeps between reads): adapters on an event loop iterate it in a thread.
    """
    offset = 0
    while True:
        done = get_build(app, actor, build_id).finished
        text, offset = read_log_text(app, build_id, offset, MAX_CHUNK, finished=done)
        if text:
            yield text
        if done and not text:
            return
        if not text:
            time.sleep(interval)
