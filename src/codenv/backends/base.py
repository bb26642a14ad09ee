"""What every installer backend shares: the interface, a clean environment, logged commands."""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from codenv.domain.errors import BuildCancelled, BuildFailed
from codenv.domain.install_options import Option
from codenv.domain.plan import Plan
from codenv.domain.secrets import mask_secrets

if TYPE_CHECKING:
    # The sandbox (its proxy, asyncio) loads with the first boxed command, not with every
    # module that names a Run.
    from codenv.sandbox import SandboxPolicy

# What a build may see of the server's environment: where programs are, the time zone, and
# how this node reaches the indexes (its CA bundle and proxies, set by its administrator).
# Nothing else: the server's variables carry its secrets (CODENV_ADMIN_PASSWORD, ...).
_KEPT = (
    "PATH",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str
    editable_location: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "version": self.version, "editable": self.editable_location}


class LogSink(Protocol):
    """Where a backend writes what its commands print (a build log, in practice)."""

    def write(self, text: str) -> None: ...


@dataclass(frozen=True)
class Run:
    """How a backend runs the commands of one build: where their output goes, how long they
    may take, the signal that cancels them, and the build's install options (parsed once)."""

    log: LogSink
    timeout: float
    cancelled: threading.Event = field(default_factory=threading.Event)
    options: tuple[Option, ...] = ()
    # The box commands that may run package code start in (None: unsandboxed, by an
    # administrator's explicit choice, or for trusted steps).
    box: SandboxPolicy | None = None


class Installer(Protocol):
    """One small interface for every installer codenv can build with."""

    name: str
    # Files and directories of the installer itself that a box must see (its binary).
    box_read_only: tuple[Path, ...]

    def resolve(self, run: Run, plan: Plan, requirements: Path, lock: Path, upgrade: bool) -> None:
        """Write the exact requirements of `requirements` into `lock` (keeping its pins)."""

    def create_venv(self, run: Run, plan: Plan, target: Path) -> None: ...

    def install(self, run: Run, lock: Path, python: Path) -> None: ...

    def install_at(
        self, run: Run, interpreter: str, venv_options: Sequence[str], lock: Path, env_path: Path
    ) -> None:
        """A venv made and the lock installed at `env_path` inside the run's box (an env at
        its path in a container image)."""

    def check(self, run: Run, python: Path) -> tuple[str, ...]:
        """Fail (BuildFailed) when the env is broken; the warnings of what is not."""

    def installed(self, run: Run, python: Path) -> list[InstalledPackage]: ...

    def write_pylock(self, run: Run, interpreter: str, lock: Path, out: Path) -> None:
        """`lock` (exact, hashed) as a PEP 751 `pylock.toml`, for tools other than codenv."""


class EditableInstaller(Protocol):
    """Installs local source trees as editable (`-e PATH`) into a built venv."""

    name: str
    box_read_only: tuple[Path, ...]

    def install_editables(self, run: Run, paths: Sequence[str], python: Path) -> None: ...


def clean_environ(extra: Mapping[str, str]) -> dict[str, str]:
    """An environment built from nothing: none of the server's own variables (its secrets,
    CODENV_*, PIP_*, UV_*) reach an installer, a build backend or an init script."""
    env = {key: os.environ[key] for key in _KEPT if key in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update({"NO_COLOR": "1", "PIP_CONFIG_FILE": os.devnull, "LC_ALL": "C.UTF-8"})
    env.update(extra)
    return env


def _failure_summary(lines: Sequence[str]) -> str:
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("error:", "×", "ERROR:")):
            return "\n".join(line.rstrip() for line in lines[index:])[-2000:]
    return "\n".join(line.rstrip() for line in lines[-10:])[-2000:]


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: be killed when the codenv thread that started it dies (Linux).

    A build worker killed with SIGKILL must not leave an installer writing into a revision
    directory that recovery is about to remove.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return


@dataclass
class _Started:
    output: IO[str]
    pid: int
    wait: Callable[[], int]
    kill: Callable[[], None]
    # What the box's network proxy refused, and why (read once the command has ended).
    refused: Callable[[], tuple[str, ...]] = lambda: ()


@contextlib.contextmanager
def _start(
    args: Sequence[str], run: Run, env: Mapping[str, str], cwd: Path | None
) -> Iterator[_Started]:
    """Start `args` in the run's box, or (unboxed) leading its own process group; either way,
    killing it ends everything it started."""
    if run.box is not None:
        from codenv import sandbox

        policy = replace(
            run.box,
            environment={**run.box.environment, **env},
            workdir=cwd or run.box.workdir,
        )
        with sandbox.start(policy, args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as box:
            assert box.process.stdout is not None
            output = io.TextIOWrapper(box.process.stdout, errors="replace")

            def refused() -> tuple[str, ...]:
                return box.proxy.refused if box.proxy is not None else ()

            yield _Started(output, box.process.pid, box.process.wait, box.kill, refused)
        return
    process = subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
        text=True,
        errors="replace",
        process_group=0,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 (only calls prctl, async-signal-safe)
    )

    def kill() -> None:
        # The command leads its own process group: its build backends go with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    assert process.stdout is not None
    with process:
        yield _Started(process.stdout, process.pid, process.wait, kill)


def run_logged(
    what: str,
    args: Sequence[str],
    run: Run,
    env: Mapping[str, str],
    cwd: Path | None = None,
    held: list[str] | None = None,
) -> None:
    """Run `args`, copying its output into the log; BuildFailed with its error lines if it fails.

    Killed whole at the time limit or when the build is cancelled. With `held`, the output
    goes there instead of the log.
    """
    recent: deque[str] = deque(maxlen=40)
    with _start(args, run, env, cwd) as started, _Reaper(started.kill, run) as reaper:
        for line in started.output:
            (run.log.write if held is None else held.append)(line)
            recent.append(line)
        code = started.wait()
        for request in started.refused():
            run.log.write(f"sandbox: refused a network request: {request}")
    if code != 0:
        if reaper.cancelled:
            raise BuildCancelled(f"{what} was stopped: the build was cancelled")
        reason = f"timed out after {run.timeout:.0f} s" if reaper.timed_out else f"exit code {code}"
        summary = mask_secrets(_failure_summary(list(recent)))
        raise BuildFailed(f"{what} failed ({reason}):\n{summary}", returncode=code)


class _Reaper:
    """Kills a command's process group when its time is up or its build is cancelled."""

    def __init__(self, kill: Callable[[], None], run: Run) -> None:
        self._kill, self._run = kill, run
        self._done = threading.Event()
        self.timed_out = self.cancelled = False
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _Reaper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        deadline = time.monotonic() + self._run.timeout
        while not self._done.wait(0.1):
            self.cancelled = self._run.cancelled.is_set()
            self.timed_out = time.monotonic() >= deadline
            if self.cancelled or self.timed_out:
                self._kill()
                return
