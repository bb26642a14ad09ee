"""pip, for the one step uv cannot do: editable installs of setup.py projects on Python 3.6.

The last setuptools for 3.6 has no PEP 660 hooks, so uv cannot install such a project as
editable there; pip's legacy `setup.py develop` path can. pip is taken from the interpreter's
own `ensurepip` (no network) and resolves the editable's dependencies with the plan's index
options. Editables whose build backend implements PEP 660 still go through uv on 3.6.
"""

from __future__ import annotations

import os
from pathlib import Path

from codenv.backends.base import clean_environ, run_logged
from codenv.builds.logs import BuildLog
from codenv.domain.plan import Plan

# From Python 3.7 on, setuptools with PEP 660 installs, and uv handles every editable.
UV_EDITABLE_MIN = (3, 7)


def editables_for_pip(plan: Plan) -> tuple[str, ...]:
    """The editable paths of `plan` that need pip: setup.py projects on Python 3.6."""
    if plan.python_minor >= UV_EDITABLE_MIN:
        return ()
    paths = (line.removeprefix("-e ") for line in plan.requested if line.startswith("-e "))
    return tuple(path for path in paths if os.path.exists(os.path.join(path, "setup.py")))


def install_editables(plan: Plan, python: Path, log: BuildLog, timeout: float) -> None:
    env = clean_environ({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    run_logged("bootstrapping pip", [str(python), "-m", "ensurepip"], log, env, timeout)
    args = [str(python), "-m", "pip", "install", *plan.install_options]
    for path in editables_for_pip(plan):
        args += ["-e", path]
    run_logged("installing editable packages with pip", args, log, env, timeout)
