"""What every installer backend shares: the interface, a clean environment, logged commands."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from codenv.builds.logs import BuildLog
from codenv.domain.errors import BuildFailed
from codenv.domain.plan import Plan
from codenv.domain.secrets import mask_secrets

# Variables that would make an installer read settings codenv did not choose: every index
# option is passed explicitly instead.
_DROPPED_PREFIXES = ("PIP_", "UV_", "PYTHON", "CONDA_")
_DROPPED = {"VIRTUAL_ENV", "PYENV_VERSION"}


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str
    editable_location: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "version": self.version, "editable": self.editable_location}


class Installer(Protocol):
    """One small interface for every installer codenv can build with."""

    name: str

    def resolve(
        self, plan: Plan, requirements: Path, lock: Path, upgrade: bool, log: BuildLog
    ) -> None:
        """Write the exact requirements of `requirements` into `lock` (keeping its pins)."""

    def create_venv(self, plan: Plan, target: Path, log: BuildLog) -> None: ...

    def install(self, plan: Plan, lock: Path, python: Path, log: BuildLog) -> None: ...

    def check(self, python: Path, log: BuildLog) -> None: ...

    def installed(self, python: Path) -> list[InstalledPackage]: ...


def clean_environ(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_DROPPED_PREFIXES) and key not in _DROPPED
    }
    env.update({"NO_COLOR": "1", "PIP_CONFIG_FILE": os.devnull})
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


def run_logged(
    what: str,
    args: Sequence[str],
    log: BuildLog,
    env: Mapping[str, str],
    timeout: float,
    cwd: Path | None = None,
    held: list[str] | None = None,
) -> None:
    """Run `args`, copying its output into the log; BuildFailed with its error lines if it fails.

    With `held`, the output goes there instead of the log, for the caller to decide.
    """
    recent: deque[str] = deque(maxlen=40)
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
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        # The installer leads its own process group: its build backends go with it.
        os.killpg(process.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, _kill)
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if held is None:
                log.write(line)
            else:
                held.append(line)
            recent.append(line)
        code = process.wait()
    finally:
        timer.cancel()
    if code != 0:
        reason = f"timed out after {timeout:.0f} s" if timed_out.is_set() else f"exit code {code}"
        summary = mask_secrets(_failure_summary(list(recent)))
        raise BuildFailed(f"{what} failed ({reason}):\n{summary}")
