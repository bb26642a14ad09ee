"""pip, for the one step uv cannot do: editable installs of setup.py projects on Python 3.6.

The last setuptools for 3.6 has no PEP 660 hooks, so uv cannot install such a project as
editable there; pip's legacy `setup.py develop` path can. pip is taken from the interpreter's
own `ensurepip` (no network) and resolves the editable's dependencies with the build's index
options. Editables whose build backend implements PEP 660 still go through uv on 3.6.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from codenv.backends.base import Run, clean_environ, run_logged
from codenv.domain.install_options import Option

# Locations may carry credentials: pip reads them from its variables, off the command line.
_VARIABLES = {
    "--index-url": "PIP_INDEX_URL",
    "--extra-index-url": "PIP_EXTRA_INDEX_URL",
    "--find-links": "PIP_FIND_LINKS",
    "--trusted-host": "PIP_TRUSTED_HOST",
}


def pip_options(options: Sequence[Option]) -> tuple[list[str], dict[str, str]]:
    """Install options as pip takes them: arguments, and variables for the locations."""
    args: list[str] = []
    environ: dict[str, str] = {}
    for option in options:
        variable = _VARIABLES.get(option.name)
        if variable is None:
            args.extend(option.tokens())
        else:
            environ[variable] = " ".join(v for v in (environ.get(variable), option.value) if v)
    return args, environ


class PipInstaller:
    name = "pip"
    # It runs the env's own interpreter, whose prefix every box sees already.
    box_read_only: tuple[Path, ...] = ()

    def install_editables(self, run: Run, paths: Sequence[str], python: Path) -> None:
        args, variables = pip_options(run.options)
        quiet = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
        env = clean_environ({**quiet, **variables})
        run_logged("bootstrapping pip", [str(python), "-m", "ensurepip"], run, clean_environ(quiet))
        args = [str(python), "-m", "pip", "install", *args]
        for path in paths:
            args += ["-e", path]
        run_logged("installing editable packages with pip", args, run, env)
