"""Which process holds a build or a build slot: host, pid and the process's start time (so a
reused pid is not taken for the holder). Only ever a fast path: on another host nothing is
known from a token, and a holder there is judged by its lease (services/leases.py)."""

from __future__ import annotations

import os
import socket
from functools import cache

from codenv.jobs.queue import InlineQueue, JobQueue, LocalWorkerQueue


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may hold spaces, so split after ')'.
    return stat.rsplit(")", 1)[1].split()[19]


@cache
def _token_of(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def holder_token() -> str:
    # Keyed by pid: a forked child (a prefork worker pool) is a holder of its own.
    return _token_of(os.getpid())


def queue_holder(queue: JobQueue) -> str:
    """The holder a build submitted to `queue` records: this process when its queue keeps the
    build in memory (threads, inline), none ("") when a broker or a detached process has it
    until a worker claims it."""
    return holder_token() if isinstance(queue, LocalWorkerQueue | InlineQueue) else ""


def holder_gone(token: str) -> bool:
    """True only when the holder certainly died: on this host, and its process is gone (or the
    token is no token). A holder on another host is never judged from here."""
    try:
        host, pid, started = token.rsplit(":", 2)
        number = int(pid)
    except ValueError:
        return True
    return host == socket.gethostname() and _start_time(number) != started
