"""One revision's exact lock installed on this execution node, as an import build installs a
bundle's lock: nothing is resolved, the core package comes from this node's own wheel, the
install runs in the sandbox like any install, from this node's own cache first (offline) and
from its index only for what the cache lacks (backends/uv.py).

What is this node's own: the interpreter (the revision's Python minor among the interpreters
found here, never the design node's path), the install options (its index), the cache.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codenv.backends.base import Run
from codenv.builds.executor import BuildInput, execute
from codenv.builds.logs import BuildLog
from codenv.domain.builds import ResolutionPolicy
from codenv.domain.bundles import local_lock
from codenv.domain.install_options import to_tokens
from codenv.domain.locks import lock_key
from codenv.domain.plan import Plan
from codenv.domain.secrets import mask_secrets
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import EnvLayout
from codenv.interpreters import Discovery
from codenv.services.app import Codenv
from codenv.services.boxes import BuildDirs, build_boxes
from codenv.services.interpreters import interpreter_for
from codenv.services.plans import effective_options, file_sha256, spec_context

Say = Callable[[str], None]


@dataclass(frozen=True)
class Wanted:
    """The revision this node must hold of one env, as the database records it."""

    env: str
    number: int
    build_id: str  # the build that made it: names this node's install of it
    plan: dict[str, Any]
    spec: dict[str, Any]
    lock: str


def sync_dir(app: Codenv) -> Path:
    """The node agent's own corner of the builds directory: a log per env (its last install)
    and scratch space (emptied at each pass: one agent runs per home)."""
    return app.settings.builds_dir / "sync"


def log_file(app: Codenv, env: str) -> Path:
    return sync_dir(app) / f"{env}.log"


def node_lock(app: Codenv, found: Discovery, wanted: Wanted) -> str:
    """The revision's lock as this node installs it: the core package from this node's wheel."""
    context = spec_context(app, found)
    return local_lock(wanted.lock, context.core_line, file_sha256(context.core_wheel))


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def holds(layout: EnvLayout, wanted: Wanted, lock: str) -> bool:
    """Whether the wanted revision here is complete and holds its lock for its Python minor:
    as this node installs it (`lock`), or as it was built, when this home is the one that
    built it. The executor records plan and lock last, once installed and checked: a
    directory an install killed midway has neither."""
    meta = layout.revision(wanted.number) / ".codenv"
    try:
        held = lock_key((meta / "lock.txt").read_text("utf-8"))
        plan = json.loads((meta / "plan.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    python = _minor(str(plan.get("python_version", "")))
    if python != _minor(str(wanted.plan["python_version"])):
        return False
    return held in (lock_key(mask_secrets(lock)), lock_key(mask_secrets(wanted.lock)))


def install(
    app: Codenv,
    found: Discovery,
    wanted: Wanted,
    lock: str,
    stop: threading.Event,
    say: Say,
) -> None:
    """Install `lock` into the env's revision directory here (removed again if it fails);
    BuildFailed and the like say why, BuildCancelled when `stop` was set meanwhile."""
    plan = Plan.from_dict(wanted.plan)
    interpreter = interpreter_for(found, _minor(plan.python_version))
    options = effective_options(app, EnvSpec.from_dict(wanted.spec)).install
    plan = replace(
        plan,
        python_version=interpreter.version,
        interpreter=interpreter.path,
        install_options=to_tokens(options),
    )
    layout = EnvLayout.of(app.settings.envs_dir, wanted.env)
    work = sync_dir(app) / "work" / wanted.env
    name = f"sync-{wanted.build_id}"
    dirs = BuildDirs(
        work, layout.revision(wanted.number), layout.resources_dir, layout.staging_dir(name)
    )
    job = BuildInput(
        build_id=name,
        plan=plan,
        number=wanted.number,
        target=dirs.target,
        work_dir=work,
        policy=ResolutionPolicy.EXACT,
        previous_lock=lock,
        reuse_resolution=False,
        pip_editables=(),
        init_script=None,
        boxes=build_boxes(app, plan, options, (), dirs),
    )
    path = log_file(app, wanted.env)
    path.unlink(missing_ok=True)
    log = BuildLog(path)
    log.write(f"{wanted.env}: revision {wanted.number}, Python {interpreter.version}")

    def report(stage: str, detail: str) -> None:
        log.step(stage, detail)
        say(f"{wanted.env} revision {wanted.number}: {stage}: {detail}")

    try:
        execute(job, app.tools, Run(log, app.settings.build_timeout_seconds, stop, options), report)
    finally:
        log.close()
        shutil.rmtree(work, ignore_errors=True)
