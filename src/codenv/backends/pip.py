"""pip, for the one step uv cannot do: editable installs on Python 3.6.

The last setuptools for 3.6 has no PEP 660 hooks, so uv refuses `-e` there; pip's legacy
`setup.py develop` path works. pip is taken from the interpreter's own `ensurepip` (no network),
and the editable's dependencies are resolved by pip with the plan's index options.
"""

from __future__ import annotations

from pathlib import Path

from codenv.backends.base import clean_environ, run_logged
from codenv.builds.logs import BuildLog
from codenv.domain.plan import Plan

# uv can install editables from Python 3.7 on (setuptools with PEP 660 installs there).
UV_EDITABLE_MIN = (3, 7)


def needs_pip_for_editables(plan: Plan) -> bool:
    return plan.has_editables and plan.python_minor < UV_EDITABLE_MIN


def install_editables(plan: Plan, python: Path, log: BuildLog, timeout: float) -> None:
    env = clean_environ({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    run_logged("bootstrapping pip", [str(python), "-m", "ensurepip"], log, env, timeout)
    editables = [line.removeprefix("-e ") for line in plan.requested if line.startswith("-e ")]
    args = [str(python), "-m", "pip", "install", *plan.install_options]
    for path in editables:
        args += ["-e", path]
    run_logged("installing editable packages with pip", args, log, env, timeout)
