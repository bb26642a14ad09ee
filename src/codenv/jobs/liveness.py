"""Who holds a build: host, pid and the process's start time (so a reused pid is not alive)."""

from __future__ import annotations

import os
import socket
from functools import cache


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may hold spaces, so split after ')'.
    return stat.rsplit(")", 1)[1].split()[19]


@cache
def holder_token() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def holder_alive(token: str) -> bool:
    """False only when the holder certainly died: same host, and its process is gone."""
    try:
        host, pid, started = token.rsplit(":", 2)
        number = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    return _start_time(number) == started
