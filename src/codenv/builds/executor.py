"""Execute a build input into a fresh revision directory: resolve, create, install, check,
record, run the init script. It decides nothing: the service put every choice in the input.

Nothing here touches the active revision: the caller commits and switches `current` only
after this returns, so a failed, cancelled or killed build leaves the working env as it was.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from codenv.backends.base import EditableInstaller, InstalledPackage, Installer, Run
from codenv.builds.init_script import InitScript, run_init_script
from codenv.builds.resolutions import ResolutionCache
from codenv.domain.builds import ResolutionPolicy
from codenv.domain.errors import BuildCancelled
from codenv.domain.plan import Plan
from codenv.domain.secrets import mask_secrets
from codenv.envdirs.layout import disk_usage

if TYPE_CHECKING:
    # Named in annotations only: the sandbox loads when a box starts (backends.base).
    from codenv.sandbox import SandboxPolicy

# Called with (stage, detail) before each stage: the build log and the build's row follow it.
StageReporter = Callable[[str, str], None]


@dataclass(frozen=True)
class BuildInput:
    """Everything one build needs, computed by the service before it starts."""

    build_id: str
    plan: Plan
    number: int  # the revision this build makes
    target: Path  # its directory
    work_dir: Path  # scratch space, removed when the build ends
    policy: ResolutionPolicy
    # The lock to start from: the active revision's ("" when none is kept), or, for the
    # EXACT policy, the bundle's lock that is installed as it is.
    previous_lock: str
    reuse_resolution: bool  # a fresh cached lock of the same input may stand in for resolving
    pip_editables: tuple[str, ...]  # setup.py editables that pip installs (Python 3.6)
    init_script: InitScript | None  # run before the switch, when the update runs it
    boxes: BuildBoxes | None  # None: an unsandboxed node (its administrator's choice)


@dataclass(frozen=True)
class BuildBoxes:
    """The boxes of the steps that run package code."""

    build: SandboxPolicy  # resolving (sdist metadata), installing what is built from source
    init_script: SandboxPolicy


@dataclass(frozen=True)
class BuildTools:
    installer: Installer
    editables: EditableInstaller
    resolutions: ResolutionCache


@dataclass(frozen=True)
class BuildOutcome:
    lock: str
    installed: list[InstalledPackage]
    size_bytes: int
    staged_env_vars: Path | None = None
    warnings: tuple[str, ...] = ()  # what the check found that does not break the env


def requirements_text(job: BuildInput) -> str:
    by_pip = {f"-e {path}" for path in job.pip_editables}
    return "".join(f"{line}\n" for line in job.plan.requirement_lines if line not in by_pip)


def _resolve(job: BuildInput, tools: BuildTools, run: Run, report: StageReporter) -> str:
    requirements = job.work_dir / "requirements.in"
    lock = job.work_dir / "lock.txt"
    if job.policy is ResolutionPolicy.EXACT:
        report("resolving", job.policy.describe())
        lock.write_text(job.previous_lock, "utf-8")
        return job.previous_lock
    text = requirements_text(job)
    requirements.write_text(text, "utf-8")
    cached = None
    if job.reuse_resolution:
        cached = tools.resolutions.get(job.plan, text, job.previous_lock)
    if cached is not None:
        report("resolving", f"same input resolved {cached[1]:.0f} s ago: reusing that lock")
        lock.write_text(cached[0], "utf-8")
        return cached[0]
    if job.previous_lock:
        # uv keeps the versions already pinned in its output file: that is what keeps
        # unchanged requirements at their locked versions.
        lock.write_text(job.previous_lock, "utf-8")
    report("resolving", job.policy.describe())
    upgrade = job.policy is ResolutionPolicy.UPGRADE_ALL
    tools.installer.resolve(run, job.plan, requirements, lock, upgrade)
    result = lock.read_text("utf-8")
    tools.resolutions.put(job.plan, text, job.previous_lock, result)
    return result


def _count_locked(lock: str) -> int:
    return sum(1 for line in lock.splitlines() if line and not line.startswith((" ", "#")))


def _record(target: Path, plan: Plan, lock: str) -> None:
    meta = target / ".codenv"
    meta.mkdir(exist_ok=True)
    (meta / "plan.json").write_text(json.dumps(plan.masked(), indent=2), "utf-8")
    # The revision's copies are for people to read: a `pkg @ https://token@host/...` line
    # keeps its credential only in the database, which the next build's resolve reads.
    (meta / "lock.txt").write_text(mask_secrets(lock), "utf-8")


def _stages(job: BuildInput, tools: BuildTools, run: Run, report: StageReporter) -> BuildOutcome:
    boxed = replace(run, box=job.boxes.build if job.boxes else None)
    lock_text = _resolve(job, tools, boxed, report)
    python = job.target / "bin" / "python"
    report("creating", f"venv with Python {job.plan.python_version} ({job.plan.interpreter})")
    tools.installer.create_venv(run, job.plan, job.target)
    count = _count_locked(lock_text)
    report("installing", f"{count} locked package{'' if count == 1 else 's'}")
    tools.installer.install(boxed, job.work_dir / "lock.txt", python)
    if job.pip_editables:
        report("installing", f"setup.py editables with {tools.editables.name}")
        tools.editables.install_editables(boxed, job.pip_editables, python)
    report("checking", "installed packages are compatible")
    warnings = tools.installer.check(run, python)
    for warning in warnings:
        run.log.write(f"warning: {warning} (it runs; pip would install it without a word)")
    report("recording", "installed packages")
    installed = tools.installer.installed(run, python)
    _record(job.target, job.plan, lock_text)
    staged = None
    if job.init_script is not None:
        where = job.init_script.resources_dir
        report("init script", f"running the resources init script in {where}")
        scripted = replace(run, box=job.boxes.init_script if job.boxes else None)
        staged = run_init_script(job.init_script, python, job.work_dir, scripted)
    return BuildOutcome(lock_text, installed, disk_usage(job.target), staged, warnings)


def execute(job: BuildInput, tools: BuildTools, run: Run, report: StageReporter) -> BuildOutcome:
    """Build revision `job.number`; on any failure its directory is removed and the error raised."""

    def checked_report(stage: str, detail: str) -> None:
        if run.cancelled.is_set():
            raise BuildCancelled("the build was cancelled")
        report(stage, detail)

    if job.target.exists():
        # Left by a build that was killed: never part of a revision, safe to discard.
        shutil.rmtree(job.target)
    # Made now, empty, so that the build's box can show it from the first step on.
    job.target.mkdir(parents=True)
    job.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _stages(job, tools, run, checked_report)
    except BaseException:
        shutil.rmtree(job.target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(job.work_dir, ignore_errors=True)
