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
from codenv.domain.install_options import to_tokens


class PipInstaller:
    name = "pip"

    def install_editables(self, run: Run, paths: Sequence[str], python: Path) -> None:
        env = clean_environ({"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
        run_logged("bootstrapping pip", [str(python), "-m", "ensurepip"], run, env)
        args = [str(python), "-m", "pip", "install", *to_tokens(run.options)]
        for path in paths:
            args += ["-e", path]
        run_logged("installing editable packages with pip", args, run, env)
