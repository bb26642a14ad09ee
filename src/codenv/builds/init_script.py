"""Running a resources init script with an env's interpreter, into a staged env-vars file.

The script writes env vars through `codenv_runtime.resources` into a staged copy of
`resources_env.json`; the caller puts it in place only once the build has succeeded, so a
failing script leaves the previous env vars in force.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from codenv.backends.base import clean_environ, run_logged
from codenv.builds.logs import BuildLog
from codenv.envdirs.layout import EnvLayout


@dataclass(frozen=True)
class InitScriptRun:
    script: str
    python: Path
    layout: EnvLayout
    build_id: str
    work_dir: Path
    current_vars: Mapping[str, str]
    timeout: float


def run_init_script(run: InitScriptRun, log: BuildLog) -> Path:
    """Run the script; returns the staged env-vars file (BuildFailed if the script fails)."""
    resources = run.layout.resources_dir
    resources.mkdir(parents=True, exist_ok=True)
    staged = run.layout.staged_env_vars_file(run.build_id)
    if run.layout.env_vars_file.exists():
        shutil.copyfile(run.layout.env_vars_file, staged)
    run.work_dir.mkdir(parents=True, exist_ok=True)
    script = run.work_dir / "resources_init.py"
    script.write_text(run.script, "utf-8")
    env = clean_environ(dict(run.current_vars))
    env.update(
        CODENV_RESOURCES_DIR=str(resources),
        CODENV_ENV_VARS_FILE=str(staged),
        VIRTUAL_ENV=str(run.python.parent.parent),
        PATH=f"{run.python.parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    log.step("init script", f"running the resources init script in {resources}")
    try:
        run_logged(
            "the resources init script",
            [str(run.python), str(script)],
            log,
            env,
            run.timeout,
            cwd=resources,
        )
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return staged


def commit_env_vars(staged: Path, layout: EnvLayout) -> None:
    """Put a staged env-vars file in force (one rename); no file means no vars were set."""
    if staged.exists():
        os.replace(staged, layout.env_vars_file)
