"""Start a command in its box, wait for it within the box's time limit, end it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO

from codenv.domain.errors import Unavailable
from codenv.sandbox.argv import sandbox_argv
from codenv.sandbox.host import host_view, sandbox_available
from codenv.sandbox.netns import Handshake, listen_in_box
from codenv.sandbox.network import PROXY_PORT, HostPort
from codenv.sandbox.pids import PidsCgroup
from codenv.sandbox.policy import NetworkMode, SandboxLimits, SandboxPolicy
from codenv.sandbox.proxy import IndexProxy

# bwrap exits with 128 + n when the command died of signal n.
_SIGNALLED = 128

Output = int | IO[bytes] | None


@dataclass(frozen=True)
class SandboxResult:
    """How a box ended. stdout / stderr are empty when they went elsewhere (a log).
    `refused` lists the network requests the proxy of an `indexes` box refused, and why."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    refused: tuple[str, ...] = ()

    def limit_reached(self, limits: SandboxLimits) -> str | None:
        """The limit that ended the box, in words for a build log, or None.

        Memory and process limits do not end a box: the allocation or the fork fails and
        the program says so in its own output.
        """
        if self.timed_out:
            return f"stopped: the sandbox ran past its {limits.timeout_seconds:g} s time limit"
        if self.returncode == _SIGNALLED + signal.SIGXFSZ:
            return f"stopped: a file grew past the {limits.file_size_bytes}-byte file size limit"
        if self.returncode == _SIGNALLED + signal.SIGXCPU:
            return f"stopped: a process used up its {limits.cpu_seconds} s CPU time limit"
        return None


class Box:
    """A started box. Leaving the `with` block kills it if it still runs."""

    def __init__(
        self, process: subprocess.Popen[bytes], cgroup: PidsCgroup | None, limits: SandboxLimits
    ) -> None:
        self.process = process
        self._cgroup = cgroup
        self._limits = limits
        self._started = time.monotonic()
        self.proxy: IndexProxy | None = None

    def wait(self, input: bytes | None = None) -> SandboxResult:
        """Wait for the end (feeding `input`), killing the box at its time limit."""
        remaining = self._limits.timeout_seconds - (time.monotonic() - self._started)
        timed_out = False
        try:
            out, err = self.process.communicate(input, timeout=max(remaining, 0))
        except subprocess.TimeoutExpired:
            timed_out = True
            self.kill()
            out, err = self.process.communicate()
        self._release()
        return SandboxResult(
            returncode=self.process.returncode,
            stdout=(out or b"").decode(errors="replace"),
            stderr=(err or b"").decode(errors="replace"),
            timed_out=timed_out,
            seconds=time.monotonic() - self._started,
            refused=self.proxy.refused if self.proxy is not None else (),
        )

    def kill(self) -> None:
        """End the whole box: bwrap dies, and with it (--die-with-parent, PID namespace)
        every process in the box."""
        if self.process.poll() is None:
            self.process.kill()

    def _release(self) -> None:
        """Stop what lives as long as the box: its proxy, its cgroup."""
        if self.proxy is not None:
            self.proxy.stop()
        if self._cgroup is not None:
            self._cgroup.release()

    def __enter__(self) -> Box:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
        self.process.wait()
        self._release()


def start(
    policy: SandboxPolicy,
    command: Sequence[str],
    *,
    stdin: Output = subprocess.DEVNULL,
    stdout: Output = subprocess.PIPE,
    stderr: Output = subprocess.PIPE,
) -> Box:
    """Start `command` in the box of `policy`; Unavailable when no box can start here."""
    reason = sandbox_available()
    if reason is not None:
        raise Unavailable(reason)
    handshake = Handshake() if policy.network is NetworkMode.INDEXES else None
    fds = (handshake.info_fd, handshake.block_fd) if handshake is not None else None
    argv = sandbox_argv(policy, command, host_view(), handshake=fds)
    cgroup = PidsCgroup.create(policy.limits.processes)
    prefix = cgroup.enter_argv() if cgroup is not None else []
    try:
        process = subprocess.Popen(
            [*prefix, *argv],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=policy.box_environment(),
            close_fds=True,
            pass_fds=fds or (),
        )
    except BaseException:
        if cgroup is not None:
            cgroup.release()
        if handshake is not None:
            handshake.close()
        raise
    box = Box(process, cgroup, policy.limits)
    if handshake is not None:
        _open_network(box, handshake, policy.allowed_hosts)
    return box


def _open_network(box: Box, handshake: Handshake, allowed: tuple[HostPort, ...]) -> None:
    """Start the proxy of an `indexes` box on a listener in its network namespace, then let
    its command run; a box whose network cannot be set up is ended, never run without."""
    try:
        handshake.spawned()
        pid = handshake.child_pid()
        if pid is not None:  # else bwrap ended before making a box: its result says why
            box.proxy = IndexProxy(listen_in_box(pid, PROXY_PORT), allowed)
            box.proxy.start()
            handshake.release()
    except BaseException:
        box.__exit__(None, None, None)
        raise
    finally:
        handshake.close()


def run(
    policy: SandboxPolicy, command: Sequence[str], *, input: bytes | None = None
) -> SandboxResult:
    """Run `command` in its box to the end (or its time limit), capturing its output."""
    stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
    with start(policy, command, stdin=stdin) as box:
        return box.wait(input)
