"""The start of a box in `indexes` mode: bwrap pauses between making the box's namespaces
and running its command, while codenv opens the proxy's listener inside the box's own
network namespace (sandbox/netns_listen.py) and starts the proxy on it."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from codenv.domain.errors import Unavailable

# bwrap writes a few hundred bytes of JSON and closes: a box that takes longer is broken.
_INFO_TIMEOUT = 30.0
_HELPER_TIMEOUT = 30.0
_HELPER = Path(__file__).with_name("netns_listen.py")


class Handshake:
    """The two pipes between codenv and a starting bwrap: bwrap writes its child's pid on
    one (--info-fd) and waits on the other (--block-fd) until codenv releases it."""

    def __init__(self) -> None:
        self._info_read, self.info_fd = os.pipe()
        self.block_fd, self._block_write = os.pipe()
        self._open = [self._info_read, self.info_fd, self.block_fd, self._block_write]

    def spawned(self) -> None:
        """Close bwrap's ends here, once bwrap holds them: an end left open in the server
        would hide bwrap's exit (no EOF) from `child_pid`."""
        self._close(self.info_fd, self.block_fd)

    def child_pid(self) -> int | None:
        """The pid of the box's first process, or None when bwrap ended without a box
        (its exit status and stderr then say why)."""
        deadline = time.monotonic() + _INFO_TIMEOUT
        info = b""
        while chunk := _read_before(self._info_read, deadline):
            info += chunk
        if not info:
            return None
        return int(json.loads(info)["child-pid"])

    def release(self) -> None:
        """Let the box's command run."""
        # A broken pipe: bwrap has already ended, and the box's result says why.
        with contextlib.suppress(BrokenPipeError):
            os.write(self._block_write, b"1")
        self._close(self._block_write)

    def close(self) -> None:
        self._close(*self._open)

    def _close(self, *fds: int) -> None:
        for fd in fds:
            if fd in self._open:
                self._open.remove(fd)
                os.close(fd)


def _read_before(fd: int, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    readable, _, _ = select.select([fd], [], [], max(remaining, 0))
    if not readable:
        raise Unavailable("the sandbox did not start: bwrap wrote no box information in time")
    return os.read(fd, 65536)


def listen_in_box(pid: int, port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` in the network namespace of process `pid`."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        command = [
            sys.executable,
            "-I",
            "-S",
            str(_HELPER),
            str(pid),
            str(theirs.fileno()),
            str(port),
        ]
        done = subprocess.run(
            command,
            pass_fds=(theirs.fileno(),),
            env={},  # nothing of the server's own environment, even outside the box
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()
            raise Unavailable(
                "the sandbox's network to the package indexes could not be set up: "
                + (detail[-1] if detail else f"exit status {done.returncode}")
            )
        _, fds, _, _ = socket.recv_fds(ours, 64, 1)
    return socket.socket(fileno=fds[0])
