"""Execute a plan into a fresh revision directory: resolve, create, install, check, record.

Nothing here touches the active revision: the caller switches `current` only after this
returns, so a failed or killed build leaves the working env as it was.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from codenv.backends import pip
from codenv.backends.base import InstalledPackage, Installer
from codenv.builds.init_script import InitScriptRun, run_init_script
from codenv.builds.logs import BuildLog
from codenv.builds.resolutions import ResolutionCache
from codenv.domain.plan import Plan
from codenv.envdirs.layout import EnvLayout, disk_usage


@dataclass(frozen=True)
class BuildJob:
    plan: Plan
    layout: EnvLayout
    number: int
    work_dir: Path
    previous_lock: str | None
    upgrade_all: bool
    timeout: float
    build_id: str = ""
    rebuild: bool = False
    resolutions: ResolutionCache | None = None
    init_script: str = ""
    current_vars: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildOutcome:
    lock: str
    installed: list[InstalledPackage]
    size_bytes: int
    staged_env_vars: Path | None = None


def _requirements_text(plan: Plan) -> str:
    by_pip = {f"-e {path}" for path in pip.editables_for_pip(plan)}
    return "".join(f"{line}\n" for line in plan.requirement_lines if line not in by_pip)


def _resolve(job: BuildJob, installer: Installer, log: BuildLog) -> str:
    job.work_dir.mkdir(parents=True, exist_ok=True)
    requirements = job.work_dir / "requirements.in"
    lock = job.work_dir / "lock.txt"
    text = _requirements_text(job.plan)
    requirements.write_text(text, "utf-8")
    previous = "" if job.upgrade_all else (job.previous_lock or "")
    forced = job.upgrade_all or job.rebuild
    cached = (
        None if forced or job.resolutions is None else job.resolutions.get(job.plan, text, previous)
    )
    if cached is not None:
        log.step("resolving", f"same input resolved {cached[1]:.0f} s ago: reusing that lock")
        lock.write_text(cached[0], "utf-8")
        return cached[0]
    if previous:
        # uv keeps the versions already pinned in its output file: that is what keeps
        # unchanged requirements at their locked versions.
        lock.write_text(previous, "utf-8")
    log.step(
        "resolving", "upgrading all packages" if job.upgrade_all else "keeping locked versions"
    )
    installer.resolve(job.plan, requirements, lock, job.upgrade_all, log)
    result = lock.read_text("utf-8")
    if job.resolutions is not None:
        job.resolutions.put(job.plan, text, previous, result)
    return result


def _count_locked(lock: str) -> int:
    return sum(1 for line in lock.splitlines() if line and not line.startswith((" ", "#")))


def _record(target: Path, plan: Plan, lock: str) -> None:
    meta = target / ".codenv"
    meta.mkdir(exist_ok=True)
    (meta / "plan.json").write_text(json.dumps(plan.masked(), indent=2), "utf-8")
    (meta / "lock.txt").write_text(lock, "utf-8")


def _build(job: BuildJob, installer: Installer, log: BuildLog, target: Path) -> BuildOutcome:
    lock_text = _resolve(job, installer, log)
    log.step("creating", f"venv with Python {job.plan.python_version} ({job.plan.interpreter})")
    installer.create_venv(job.plan, target, log)
    log.step("installing", f"{_count_locked(lock_text)} locked packages")
    installer.install(job.plan, job.work_dir / "lock.txt", target / "bin" / "python", log)
    if pip.editables_for_pip(job.plan):
        log.step("installing", "setup.py editables with pip (uv cannot on Python 3.6)")
        pip.install_editables(job.plan, target / "bin" / "python", log, job.timeout)
    log.step("checking", "installed packages are compatible")
    installer.check(target / "bin" / "python", log)
    log.step("recording", "installed packages")
    installed = installer.installed(target / "bin" / "python")
    _record(target, job.plan, lock_text)
    staged = None
    if job.init_script:
        run = InitScriptRun(
            job.init_script,
            target / "bin" / "python",
            job.layout,
            job.build_id,
            job.work_dir,
            job.current_vars,
            job.timeout,
        )
        staged = run_init_script(run, log)
    return BuildOutcome(lock_text, installed, disk_usage(target), staged)


def execute(job: BuildJob, installer: Installer, log: BuildLog) -> BuildOutcome:
    """Build revision `job.number`; on any failure its directory is removed and the error raised."""
    target = job.layout.revision(job.number)
    if target.exists():
        # Left by a build that was killed: never part of a revision, safe to discard.
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _build(job, installer, log, target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(job.work_dir, ignore_errors=True)
