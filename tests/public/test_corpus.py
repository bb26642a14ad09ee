"""Real-world requirements files build with codenv wherever they build with pip.

Each file of `corpus/` comes from a well-known public project (its header names it) and is
installed twice on the interpreter it targets: by codenv (`create --no-core-packages -r`, in a
fresh home, against PyPI) and by `python -m venv` + that interpreter's own pip. Where pip
succeeds, codenv must succeed and the modules of the `# imports:` line must import in both
envs. Where pip fails (`# fails-on: PACKAGE`), codenv must fail too, name the package, and
keep the env's previous revision working.

Header lines: `# needs: setuptools` says an import needs `pkg_resources` (envs are seeded
like a venv, with setuptools, as the product's default is); `# codenv-fails-on: PACKAGE` with
`# why:` records a known gap — codenv refuses the file although pip installs it (see
docs/compatibility.md) — so that it is told apart from a regression and the test says when
it closes; `# codenv-warns: TEXT` names a warning the revision must record (metadata that
codenv read as pip does, where uv refuses it: docs/compatibility.md).

Slow (real installs from PyPI): run it alone, `pytest -m public_index tests/public/test_corpus.py
-n 2 -rA`; each test prints its timings.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from codenv.interpreters.discovery import Discovery
from conftest import Node

pytestmark = pytest.mark.public_index

CORPUS = Path(__file__).parent / "corpus"
PUBLIC_INDEX = "https://pypi.org/simple"
INSTALL_TIMEOUT = 900
# Machine settings pip keeps (the proxy's certificate, timeouts); the rest, such as
# PIP_FIND_LINKS to a local wheel directory, would make pip's side differ from codenv's.
_PIP_KEPT = ("PIP_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_DISABLE_PIP_VERSION_CHECK")
# Runs on Python 3.6 too: prints {module: error} for the modules that fail to import.
_IMPORT_PROBE = """
import importlib, json, sys
failed = {}
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except Exception as error:
        failed[module] = type(error).__name__ + ": " + str(error)
print(json.dumps(failed))
"""


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    python: str
    imports: tuple[str, ...]
    fails_on: str | None
    codenv_fails_on: str | None
    why: str
    codenv_warns: str | None

    @property
    def env_name(self) -> str:
        return self.path.stem


def read_corpus_file(path: Path) -> CorpusFile:
    header: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, colon, value = line.removeprefix("# ").partition(":")
        if line.startswith("# ") and colon and " " not in key:
            header[key] = value.strip()
    return CorpusFile(
        path=path,
        python=header["python"],
        imports=tuple(header["imports"].split()),
        fails_on=header.get("fails-on"),
        codenv_fails_on=header.get("codenv-fails-on"),
        why=header.get("why", ""),
        codenv_warns=header.get("codenv-warns"),
    )


CORPUS_FILES = [read_corpus_file(path) for path in sorted(CORPUS.glob("*.txt"))]


@dataclass(frozen=True)
class Install:
    ok: bool
    seconds: float
    output: str  # what the command printed: the reason of a failure
    log: str = ""  # codenv's build log, for the diagnosis of an unexpected failure


def _timed(command: list[str], environ: dict[str, str] | None = None) -> Install:
    start = time.monotonic()
    result = subprocess.run(
        command,
        env=environ,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    output = f"{result.stdout}\n{result.stderr}"
    return Install(result.returncode == 0, time.monotonic() - start, output)


def _pip_environ(cache: Path) -> dict[str, str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "UV_", "PYTHON", "VIRTUAL_ENV")) or key in _PIP_KEPT
    }
    environ.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=PUBLIC_INDEX, PIP_CACHE_DIR=str(cache))
    return environ


def _pip_install(interpreter: str, corpus_file: CorpusFile, workdir: Path) -> tuple[Install, Path]:
    """`python -m venv` + the venv's own pip (from ensurepip), as a user would."""
    venv = workdir / "venv"
    created = _timed([interpreter, "-m", "venv", str(venv)])
    assert created.ok, f"python -m venv failed:\n{created.output}"
    python = venv / "bin" / "python"
    command = [str(python), "-m", "pip", "install", "-r", str(corpus_file.path)]
    return _timed(command, _pip_environ(workdir / "pip-cache")), python


def _failed_imports(python: Path, modules: tuple[str, ...], workdir: Path) -> dict[str, str]:
    environ = {"PATH": os.environ["PATH"], "HOME": str(workdir), "MPLCONFIGDIR": str(workdir)}
    result = subprocess.run(
        [str(python), "-c", _IMPORT_PROBE, *modules],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=workdir,
    )
    assert result.returncode == 0, f"the import probe crashed:\n{result.stderr}"
    failed: dict[str, str] = json.loads(result.stdout.splitlines()[-1])
    return failed


def _show(node: Node, name: str) -> dict[str, object]:
    shown: dict[str, object] = json.loads(node.run("show", name, "--json").stdout)
    return shown


def _codenv_failure_keeps_previous_revision(node: Node, corpus_file: CorpusFile) -> Install:
    """Build an empty revision first, then the file as an update that must fail."""
    name = corpus_file.env_name
    node.run("create", name, "--python", corpus_file.python, "--no-core-packages", timeout=600)
    start = time.monotonic()
    result = node.run(
        "save", name, "-r", str(corpus_file.path), "--update", check=False, timeout=INSTALL_TIMEOUT
    )
    seconds = time.monotonic() - start
    log = node.run("logs", name, check=False).stdout
    update = Install(result.returncode == 0, seconds, f"{result.stdout}\n{result.stderr}", log)
    if not update.ok:
        shown = _show(node, name)
        assert shown["active_revision"] == 1, f"the previous revision is no longer active: {shown}"
        assert node.env_python_run(name, "import sys; print(sys.version_info[0])") == "3"
    return update


def _report(corpus_file: CorpusFile, pip: Install, codenv: Install) -> None:
    def word(install: Install) -> str:
        return f"{'ok' if install.ok else 'FAILED'} ({install.seconds:.0f} s)"

    built = sorted(
        set(re.findall(r"(?:Building wheel for|setup.py install for) ([\w.-]+)", pip.output))
    )
    print(f"{corpus_file.path.name}: pip {word(pip)}, codenv {word(codenv)}")
    print(f"  pip built from source: {', '.join(built) or 'nothing'}")


@pytest.mark.parametrize("corpus_file", CORPUS_FILES, ids=lambda f: f.path.stem)
def test_corpus_file_builds_with_codenv_as_with_pip(
    corpus_file: CorpusFile, pythons: Discovery, tmp_path: Path
) -> None:
    interpreter = pythons.for_minor(corpus_file.python)
    if interpreter is None:
        pytest.skip(f"no Python {corpus_file.python} on this node")
    pip, pip_python = _pip_install(interpreter.path, corpus_file, tmp_path)
    # Seeded like a venv, as envs are by default (the test suite turns it off elsewhere).
    node = Node(tmp_path / "home", PUBLIC_INDEX, {"CODENV_SEED_PACKAGES": "1"})
    if corpus_file.fails_on:
        assert not pip.ok, f"pip was expected to fail on {corpus_file.fails_on}, but installed"
        assert corpus_file.fails_on in pip.output
        codenv = _codenv_failure_keeps_previous_revision(node, corpus_file)
        _report(corpus_file, pip, codenv)
        assert not codenv.ok, "codenv built what pip could not install"
        assert corpus_file.fails_on in codenv.output, "codenv's failure does not name the package"
        return
    assert pip.ok, f"pip install failed:\n{pip.output[-4000:]}"
    assert _failed_imports(pip_python, corpus_file.imports, tmp_path) == {}, "imports in pip's venv"
    codenv = _codenv_create(node, corpus_file)
    _report(corpus_file, pip, codenv)
    if corpus_file.codenv_fails_on:
        _expect_known_refusal(corpus_file, codenv)
    assert codenv.ok, f"codenv failed where pip succeeded:\n{codenv.log[-4000:]}"
    _assert_codenv_imports(corpus_file, node.python(corpus_file.env_name), tmp_path)
    _assert_codenv_warnings(corpus_file, node)


def _codenv_create(node: Node, corpus_file: CorpusFile) -> Install:
    start = time.monotonic()
    result = node.run(
        "create",
        corpus_file.env_name,
        "--python",
        corpus_file.python,
        "--no-core-packages",
        "-r",
        str(corpus_file.path),
        check=False,
        timeout=INSTALL_TIMEOUT,
    )
    log = node.run("logs", corpus_file.env_name, check=False).stdout
    output = f"{result.stdout}\n{result.stderr}"
    return Install(result.returncode == 0, time.monotonic() - start, output, log)


def _expect_known_refusal(corpus_file: CorpusFile, codenv: Install) -> None:
    assert not codenv.ok, (
        f"codenv now builds {corpus_file.path.name}: remove its `# codenv-fails-on:` line "
        "and the difference from docs/compatibility.md"
    )
    assert str(corpus_file.codenv_fails_on) in codenv.output, codenv.output[-4000:]
    pytest.xfail(f"known difference from pip: {corpus_file.why}")


def _assert_codenv_warnings(corpus_file: CorpusFile, node: Node) -> None:
    if corpus_file.codenv_warns is None:
        return
    installed = json.loads(node.run("installed", corpus_file.env_name, "--json").stdout)
    warnings: list[str] = installed["warnings"]
    assert any(corpus_file.codenv_warns in warning for warning in warnings), warnings


def _assert_codenv_imports(corpus_file: CorpusFile, codenv_python: Path, workdir: Path) -> None:
    failed = _failed_imports(codenv_python, corpus_file.imports, workdir)
    assert failed == {}, f"imports that fail in the codenv env: {failed}"
