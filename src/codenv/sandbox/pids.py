"""A pids cgroup per box, for a server running as root.

RLIMIT_NPROC never holds for uid 0: the kernel exempts the root user from it, and a box
started by root runs as uid 0 outside (bwrap maps the box's 65534 to the uid that starts
it). Measured here: 200 forks of 200 under `--nproc=20`, in the box or not. Root may
create cgroups, so the box gets one with `pids.max`; any other uid needs a delegated
cgroup (systemd `Delegate=yes`), which codenv does not require: RLIMIT_NPROC holds for it.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# bwrap's own two processes (the launcher and the box's init) besides the command's.
BWRAP_PROCESSES = 2
_RELEASE_ATTEMPTS = 50
_PREFIX = "codenv-sandbox-"
# Older than any box start takes: a younger empty cgroup may be one whose box is starting.
_STALE_SECONDS = 60.0


def _pids_hierarchy() -> Path | None:
    """The directory under which a pids cgroup can be made, or None."""
    v1 = CGROUP_ROOT / "pids"
    if (v1 / "cgroup.procs").exists():
        return v1 if os.access(v1, os.W_OK) else None
    try:
        controllers = (CGROUP_ROOT / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    return CGROUP_ROOT if "pids" in controllers and os.access(CGROUP_ROOT, os.W_OK) else None


def _remove_stale(hierarchy: Path) -> None:
    """Remove the empty cgroups of boxes whose server was killed before releasing them."""
    for path in hierarchy.glob(f"{_PREFIX}*"):
        try:
            if time.time() - path.stat().st_ctime > _STALE_SECONDS:
                path.rmdir()  # fails while processes are in it: a live box keeps its own
        except OSError:
            continue


class PidsCgroup:
    """One box's cgroup: made with its limit, entered by the box's launcher, then removed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, processes: int) -> PidsCgroup | None:
        """A fresh cgroup capped at `processes` (plus bwrap's own), when root needs one."""
        if os.geteuid() != 0:
            return None
        hierarchy = _pids_hierarchy()
        if hierarchy is None:
            return None
        _remove_stale(hierarchy)
        path = hierarchy / f"{_PREFIX}{uuid.uuid4().hex}"
        path.mkdir()
        (path / "pids.max").write_text(f"{processes + BWRAP_PROCESSES}\n")
        return cls(path)

    def enter_argv(self) -> list[str]:
        """A prefix that moves the launcher into the cgroup, then execs the rest.

        A shell rather than preexec_fn: the server has threads, and preexec_fn is not safe
        in a process that has threads.
        """
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs")]

    def release(self) -> None:
        """Remove the cgroup once its processes are gone (a dying box takes a moment)."""
        for _ in range(_RELEASE_ATTEMPTS):
            try:
                self.path.rmdir()
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.005)
            else:
                return
