"""The cache decision of docs/sandbox.md, shown with real uv in real boxes: a box reads
the shared uv cache but cannot change it, and hard links cannot come out of a box."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from uv import find_uv_bin

from codenv.domain.pythons import Interpreter
from codenv.interpreters import Discovery
from codenv.sandbox import NetworkMode, SandboxPolicy, interpreter_prefix, run
from support.pkgindex import PackageIndex


@pytest.fixture(scope="module")
def interpreter(pythons: Discovery) -> Interpreter:
    newest = pythons.for_minor(pythons.minors()[-1])
    assert newest is not None
    return newest


def python_box(interpreter: Interpreter, *read_only: Path, **fields: Any) -> SandboxPolicy:
    return SandboxPolicy(read_only=(interpreter_prefix(interpreter.path), *read_only), **fields)


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def _uv_compile(uv: str, python: str, index_url: str, requirements: Path) -> list[str]:
    return [uv, "pip", "compile", str(requirements), "--python", python, "--index-url", index_url]


def test_resolve_in_the_box_reads_the_cache_and_cannot_poison_it(
    tmp_path: Path, sample_index: PackageIndex, interpreter: Interpreter
) -> None:
    uv = find_uv_bin()
    cache, requirements = tmp_path / "cache", tmp_path / "requirements.in"
    environment = {"UV_CACHE_DIR": str(cache), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"}
    venv = tmp_path / "venv"
    outside = {**os.environ, **environment}
    subprocess.run([uv, "venv", str(venv), "--python", interpreter.path], env=outside, check=True)
    # Installing unpacks the wheels into the cache: what every env's hard links point to.
    warm = [uv, "pip", "install", "beta", "--python", str(venv), "--index-url", sample_index.url]
    subprocess.run(warm, env=outside, check=True, capture_output=True)
    before = _snapshot(cache)
    # gamma is an sdist: resolving it runs its build backend, in the box, writing to the cache.
    requirements.write_text("beta\ngamma\n")
    poison = (
        "import pathlib, sys\n"
        "files = list(pathlib.Path(sys.argv[1]).rglob('*.py'))\n"
        "for path in files: path.write_text('poison')\n"
        "print(len(files))"
    )
    policy = python_box(
        interpreter,
        Path(uv),
        requirements,
        tmp_overlay=(cache,),
        environment=environment,
        network=NetworkMode.HOST,  # the test index listens on loopback
    )
    resolved = run(policy, _uv_compile(uv, interpreter.path, sample_index.url, requirements))
    assert resolved.returncode == 0, resolved.stderr
    assert "gamma==0.5" in resolved.stdout
    poisoned = run(policy, [interpreter.path, "-c", poison, str(cache)])
    assert poisoned.returncode == 0 and int(poisoned.stdout) > 0, poisoned.stderr
    assert _snapshot(cache) == before
    run(python_box(interpreter, writable=(cache,)), [interpreter.path, "-c", poison, str(cache)])
    assert _snapshot(cache) != before, "a cache bound writable would have been poisoned"


def test_hard_links_cannot_cross_two_binds(tmp_path: Path, interpreter: Interpreter) -> None:
    """Why the trusted install runs outside: in a box, uv could only copy from the cache."""
    cache, revision = tmp_path / "cache", tmp_path / "revision"
    cache.mkdir()
    revision.mkdir()
    (cache / "module.py").write_text("x = 1\n")
    link = "import os, sys; os.link(sys.argv[1], sys.argv[2])"
    command = [interpreter.path, "-c", link, str(cache / "module.py"), str(revision / "m.py")]
    result = run(python_box(interpreter, writable=(cache, revision)), command)
    assert "Invalid cross-device link" in result.stderr
