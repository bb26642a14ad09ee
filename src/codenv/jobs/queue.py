"""The queue port: builds are jobs that carry a build id, never objects."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)

Runner = Callable[[str], None]


class JobQueue(Protocol):
    def submit(self, build_id: str) -> None: ...

    def wait(self, build_id: str) -> None: ...


class LocalWorkerQueue:
    """Worker threads in this process (the embedded default)."""

    def __init__(self, runner: Runner, workers: int) -> None:
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="codenv-build")
        self._futures: dict[str, Future[None]] = {}

    def submit(self, build_id: str) -> None:
        self._futures[build_id] = self._pool.submit(self._run, build_id)

    def _run(self, build_id: str) -> None:
        try:
            self._runner(build_id)
        except Exception:
            # The runner records failures on the build itself; this is the last resort.
            logger.exception("build %s crashed", build_id)

    def wait(self, build_id: str) -> None:
        future = self._futures.pop(build_id, None)
        if future is not None:
            future.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class InlineQueue:
    """Runs each job at once in the caller's thread (unit tests)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def submit(self, build_id: str) -> None:
        self._runner(build_id)

    def wait(self, build_id: str) -> None:
        return None


class DetachedProcessQueue:
    """A detached `codenv` process per build, for a local CLI that does not wait for it."""

    def __init__(self, home: Path) -> None:
        self._home = home

    def submit(self, build_id: str) -> None:
        args = [sys.executable, "-m", "codenv", "--home", str(self._home), "run-build", build_id]
        subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ),
        )

    def wait(self, build_id: str) -> None:
        return None
