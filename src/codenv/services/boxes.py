"""Which sandbox each build step that runs package code gets: what it sees, what it may
write, how far it reaches, and whether this node builds in boxes at all.

Whoever may change a spec controls code that codenv runs (setup.py of sdists, local sources,
the init script). A build's box sees the interpreter read-only, its own scratch and revision
directories, the local-source directories an administrator allowed (read-only), and the
shared installer cache through a throw-away overlay; never the database, `config/`, other
envs, other builds' logs, or codenv itself. docs/security.md states the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codenv.domain.errors import InvalidInput, Unavailable
from codenv.domain.install_options import Option
from codenv.domain.plan import Plan
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.services.node_settings import (
    OFF,
    REQUIRED,
    code_envs_settings,
    sandbox_mode,
    update_code_envs_settings,
)
from codenv.services.plans import local_source_roots

if TYPE_CHECKING:
    # The sandbox and the executor load when a box is made or probed, not with every
    # command that imports this module (list, show: start-up, tests/test_cli_startup.py).
    from codenv.builds.executor import BuildBoxes
    from codenv.sandbox import SandboxLimits, SandboxPolicy

SETTING = "codeEnvsSettings.sandbox"
_LIMIT_KEYS = {
    "memoryBytes": "memory_bytes",
    "processes": "processes",
    "fileSizeBytes": "file_size_bytes",
    "cpuSeconds": "cpu_seconds",
}


def sandbox_available() -> str | None:
    from codenv.sandbox import sandbox_available as probe

    return probe()


def require_sandbox(app: Codenv) -> None:
    """Unavailable, saying why and what to do, when builds need a box that cannot start."""
    if sandbox_mode(app) == OFF:
        return
    reason = sandbox_available()
    if reason is not None:
        raise Unavailable(
            f"builds run in a sandbox, and {reason}. Enable unprivileged user namespaces, or "
            f"(not recommended: spec owners' code would run as codenv itself) an "
            f"administrator can turn the sandbox off: `codenv settings set-sandbox off` "
            f"({SETTING})",
            field="sandbox",
        )


def set_sandbox_mode(app: Codenv, actor: Actor, mode: str) -> str:
    if mode not in (REQUIRED, OFF):
        raise InvalidInput(f"sandbox must be {REQUIRED!r} or {OFF!r}, got {mode!r}", field="mode")
    update_code_envs_settings(app, actor, {"sandbox": mode})
    if mode == OFF:
        record(app, actor, "settings.sandbox_off", "node", {"warning": "builds run unsandboxed"})
    return mode


def _limits(app: Codenv) -> SandboxLimits:
    from codenv.sandbox import SandboxLimits

    configured: Any = code_envs_settings(app).get("sandboxLimits", {})
    values = {
        name: int(configured[key])
        for key, name in _LIMIT_KEYS.items()
        if isinstance(configured, dict) and isinstance(configured.get(key), int)
    }
    return SandboxLimits(timeout_seconds=float(app.settings.build_timeout_seconds), **values)


def _reachable(app: Codenv, options: tuple[Option, ...]) -> tuple[tuple[str, int], ...]:
    """What a box may connect to: the indexes and find-links locations of the build's
    options, and the hosts an administrator adds (`codeEnvsSettings.sandboxAllowedHosts`,
    URLs or host:port, e.g. a model hub an init script downloads from)."""
    from codenv.sandbox.network import allowed_hosts_for

    urls = [o.value for o in options if o.value and "://" in o.value]
    extra = code_envs_settings(app).get("sandboxAllowedHosts", [])
    if isinstance(extra, list):
        urls += [h if "://" in h else f"https://{h}" for h in extra if isinstance(h, str)]
    return allowed_hosts_for(urls)


def _find_links_dirs(options: tuple[Option, ...]) -> tuple[Path, ...]:
    return tuple(
        Path(o.value.removeprefix("file://"))
        for o in options
        if o.name == "--find-links" and o.value and o.value.startswith(("/", "file://"))
    )


def _editable_dirs(plan: Plan, pip_editables: tuple[str, ...]) -> tuple[Path, ...]:
    """Editable sources built the PEP 660 way: a build backend may write in them (egg-info),
    so the box sees them through a throw-away overlay; the source itself stays untouched."""
    paths = (line.removeprefix("-e ").strip() for line in plan.requested if line.startswith("-e "))
    return tuple(Path(path) for path in paths if path not in pip_editables)


@dataclass(frozen=True)
class BuildDirs:
    """The directories (and the one file) a build's boxes are given."""

    work_dir: Path
    target: Path
    resources_dir: Path
    staging_dir: Path


def build_boxes(
    app: Codenv,
    plan: Plan,
    options: tuple[Option, ...],
    pip_editables: tuple[str, ...],
    dirs: BuildDirs,
) -> BuildBoxes | None:
    """The boxes of one build, or None on a node whose administrator turned them off."""
    from codenv.builds.executor import BuildBoxes
    from codenv.sandbox import NetworkMode, SandboxPolicy, interpreter_prefix

    if sandbox_mode(app) == OFF:
        return None
    require_sandbox(app)
    tools = app.tools
    build = SandboxPolicy(
        read_only=(
            interpreter_prefix(plan.interpreter),
            *tools.installer.box_read_only,
            *tools.editables.box_read_only,
            app.settings.wheels_dir,
            *map(Path, local_source_roots(app)),
            *_find_links_dirs(options),
        ),
        # pip's legacy `setup.py develop` (setup.py projects on Python 3.6) keeps the
        # egg-info it writes into the source tree: that tree, and no other, is writable.
        writable=(dirs.work_dir, dirs.target, *map(Path, pip_editables)),
        tmp_overlay=(app.settings.uv_cache_dir, *_editable_dirs(plan, pip_editables)),
        network=NetworkMode.INDEXES,
        allowed_hosts=_reachable(app, options),
        limits=_limits(app),
    )
    script = script_box(app, plan.interpreter, dirs, options)
    return BuildBoxes(build=build, init_script=script)


def script_box(
    app: Codenv, interpreter: str, dirs: BuildDirs, options: tuple[Option, ...]
) -> SandboxPolicy:
    """The box of a resources init script: the revision it runs in, read-only; its env's
    resources directory and staged env-vars file, writable; nothing else of the node."""
    from codenv.sandbox import NetworkMode, SandboxPolicy, interpreter_prefix

    tools = app.tools
    return SandboxPolicy(
        read_only=(
            interpreter_prefix(interpreter),
            *tools.installer.box_read_only,
            dirs.target,
            dirs.work_dir,
        ),
        writable=(dirs.resources_dir, dirs.staging_dir),
        workdir=dirs.resources_dir,
        network=NetworkMode.INDEXES,
        allowed_hosts=_reachable(app, options),
        limits=_limits(app),
    )


def image_box(
    app: Codenv,
    interpreter: str,
    options: tuple[Option, ...],
    inputs: Path,
    relocated: tuple[tuple[Path, Path], ...],
    wheels_at: Path,
) -> SandboxPolicy:
    """The box of an image build: the env (and its resources dir) bound at their paths in the
    image, the build's inputs, the interpreter, the installer and the shared cache (a
    throw-away overlay). Image builds need it whatever the sandbox mode: only a box can show
    a directory at the image's path. The node's wheels (the core package) are shown at
    `wheels_at`, the same path on every node."""
    from codenv.sandbox import NetworkMode, SandboxPolicy, interpreter_prefix

    reason = sandbox_available()
    if reason is not None:
        raise Unavailable(
            f"image builds install the env at its path in the image inside a sandbox, and {reason}",
            field="sandbox",
        )
    return SandboxPolicy(
        read_only=(
            interpreter_prefix(interpreter),
            *app.tools.installer.box_read_only,
            *map(Path, local_source_roots(app)),
            *_find_links_dirs(options),
        ),
        writable=(inputs,),
        relocated=relocated,
        relocated_read_only=((app.settings.wheels_dir, wheels_at),),
        tmp_overlay=(app.settings.uv_cache_dir,),
        network=NetworkMode.INDEXES,
        allowed_hosts=_reachable(app, options),
        limits=_limits(app),
    )
