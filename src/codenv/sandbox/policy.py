"""What one sandbox may see, write, reach and use: a frozen policy, built by the caller."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from codenv.sandbox.network import HostPort, normalize_allowed, proxy_environment

GIB = 1024**3
MIB = 1024**2

# The box's private tmpfs (never the host's /tmp): its HOME, TMPDIR and default workdir.
BOX_TMP = "/tmp"  # noqa: S108

# The only variables a box starts with; everything else comes from the caller, never from
# the server's own os.environ (which holds CODENV_* secrets such as the admin password).
BASE_ENVIRONMENT: Mapping[str, str] = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": BOX_TMP,
    "TMPDIR": BOX_TMP,
    "LANG": "C.UTF-8",
}


class NetworkMode(StrEnum):
    """How a box reaches the network.

    `none`: a network namespace of its own with only a loopback of its own, so neither the
    server's listening ports on 127.0.0.1 nor anything else can be reached. `indexes`: the
    same namespace, plus a proxy codenv runs outside that connects only to the policy's
    `allowed_hosts` (sandbox/proxy.py). `host`: the node's network, loopback included.
    """

    NONE = "none"
    INDEXES = "indexes"
    HOST = "host"


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one box; the defaults fit a Visual ML build (resolve, sdist
    builds, init script), per node configurable.

    memory_bytes, file_size_bytes and cpu_seconds hold for each process of the box
    (RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_CPU); processes counts the box's processes and threads
    together; timeout_seconds is the wall clock of the whole box; tmp_bytes sizes the box's
    private /tmp (a tmpfs: it is memory).
    """

    memory_bytes: int = 8 * GIB
    processes: int = 1024
    file_size_bytes: int = 8 * GIB
    cpu_seconds: int = 3600
    timeout_seconds: float = 3600.0
    tmp_bytes: int = 2 * GIB
    shm_bytes: int = 64 * MIB


@dataclass(frozen=True)
class SandboxPolicy:
    """The box of one command. Every path is absolute and appears at the same path inside,
    since venvs and uv write absolute paths (shebangs, RECORD) into what they build.

    read_only: bound read-only (the interpreter's prefix, sources to read).
    writable: bound read-write (the revision being built, the env's resources dir).
    hidden: directories covered by an empty tmpfs, even when under a bound path.
    tmp_overlay: directories the box reads whose writes are thrown away when it ends (the
    shared uv cache during a resolve: warm reads, no poisoning).
    environment: variables added to BASE_ENVIRONMENT (and overriding it).
    allowed_hosts: in `indexes` mode, the (host, port) pairs the box may reach, exactly
    (`network.allowed_hosts_for(urls)` derives them from index URLs).
    relocated: (host directory, path inside) pairs bound read-write at another path: the
    one exception to "same path inside", for an env installed at its path in a container
    image (its shebangs and pyvenv.cfg must name that path).
    relocated_read_only: the same, read-only (the node's wheels at a path every node shares,
    so that what an install records of their location is the same everywhere).
    """

    read_only: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    tmp_overlay: tuple[Path, ...] = ()
    workdir: Path = Path(BOX_TMP)
    environment: Mapping[str, str] = field(default_factory=dict)
    network: NetworkMode = NetworkMode.NONE
    limits: SandboxLimits = SandboxLimits()
    allowed_hosts: tuple[HostPort, ...] = ()
    relocated: tuple[tuple[Path, Path], ...] = ()
    relocated_read_only: tuple[tuple[Path, Path], ...] = ()

    def __post_init__(self) -> None:
        pairs = (*self.relocated, *self.relocated_read_only)
        inside = (path for pair in pairs for path in pair)
        for path in (*self.read_only, *self.writable, *self.hidden, *self.tmp_overlay, *inside):
            if not path.is_absolute():
                raise ValueError(f"sandbox paths must be absolute, got {str(path)!r}")
        if self.allowed_hosts and self.network is not NetworkMode.INDEXES:
            raise ValueError(f"allowed_hosts need network={NetworkMode.INDEXES.value!r}")
        object.__setattr__(self, "allowed_hosts", normalize_allowed(self.allowed_hosts))
        # A copy, so that a caller changing its dict later cannot change a frozen policy.
        object.__setattr__(self, "environment", MappingProxyType(dict(self.environment)))

    def box_environment(self) -> dict[str, str]:
        """The whole environment of the box's command: the base plus the caller's, and in
        `indexes` mode the proxy's variables over both (the box has no other way out)."""
        proxy = proxy_environment() if self.network is NetworkMode.INDEXES else {}
        return {**BASE_ENVIRONMENT, **self.environment, **proxy}


def interpreter_prefix(interpreter: str) -> Path:
    """The installation prefix to bind read-only so a box can run `interpreter`.

    `/root/.pyenv/versions/3.12.1/bin/python3.12` gives `/root/.pyenv/versions/3.12.1`:
    only that version, never the rest of /root. Symlinks are resolved first, so a venv's
    python leads to its base interpreter.
    """
    return Path(os.path.realpath(interpreter)).parent.parent
