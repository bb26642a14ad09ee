"""Running a resources init script with an env's interpreter, into a staged env-vars file.

The script writes env vars through `codenv_runtime.resources` into a staged copy of
`resources_env.json`; the file is checked when the script ends, and put in force only once the
build has been committed, so a failing script (or one that leaves a malformed file) leaves the
previous env vars in force.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from codenv.core_package.codenv_runtime.resources import load_env_vars_file
from codenv.domain.errors import BuildFailed

if TYPE_CHECKING:
    from codenv.backends.base import Run


@dataclass(frozen=True)
class InitScript:
    """Everything a run of an env's resources init script needs."""

    text: str
    resources_dir: Path
    env_vars_file: Path  # the file in force
    staged_env_vars: Path  # where this run writes, until its build is committed
    current_vars: Mapping[str, str] = field(default_factory=dict)
    # Where the box shows `resources_dir`, when not at the same path: an image's resources
    # dir, at its path in the image (the env vars the script sets name that path).
    box_resources_dir: Path | None = None

    @property
    def seen_resources_dir(self) -> Path:
        return self.box_resources_dir or self.resources_dir


def run_init_script(script: InitScript, python: Path, work_dir: Path, run: Run) -> Path:
    """Run the script; returns the checked staged env-vars file (BuildFailed if it fails)."""
    # Here, not at the top: start-up recovery and rollbacks commit env vars (below) and
    # run nothing, so they need not load the installers' machinery.
    from codenv.backends.base import clean_environ, run_logged

    script.resources_dir.mkdir(parents=True, exist_ok=True)
    staged = script.staged_env_vars
    staged.parent.mkdir(parents=True, exist_ok=True)
    if script.env_vars_file.exists():
        shutil.copyfile(script.env_vars_file, staged)
    else:
        staged.touch()  # an empty file holds no vars; it must exist to be given to a box
    work_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / "resources_init.py"
    source.write_text(script.text, "utf-8")
    env = clean_environ(dict(script.current_vars))
    env.update(
        CODENV_RESOURCES_DIR=str(script.seen_resources_dir),
        CODENV_ENV_VARS_FILE=str(staged),
        VIRTUAL_ENV=str(python.parent.parent),
        PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    try:
        run_logged(
            "the resources init script",
            [str(python), str(source)],
            run,
            env,
            cwd=script.seen_resources_dir,
        )
        check_env_vars_file(staged, script.seen_resources_dir)
    except BaseException:
        shutil.rmtree(staged.parent, ignore_errors=True)
        raise
    return staged


def check_env_vars_file(path: Path, resources_dir: Path) -> None:
    """BuildFailed when the file the script left cannot be read back as env vars."""
    try:
        load_env_vars_file(str(path), str(resources_dir))
    except (ValueError, OSError) as error:
        raise BuildFailed(
            f"the resources init script left a malformed env vars file ({path.name}): {error}; "
            "write env vars only through codenv_runtime.resources (set_env_var, set_env_path)",
            field="resources_init_script",
        ) from error


def commit_env_vars(staged: Path, in_force: Path) -> None:
    """Put a staged env-vars file in force (one rename); no file means no vars were set."""
    if staged.exists():
        os.replace(staged, in_force)
