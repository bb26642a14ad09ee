"""What the build benchmark needs around its scenario: timed processes, clean environments, tools.

Only the standard library: time.perf_counter around subprocess.run, and GNU `du`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Installers that `python -m venv` seeds; no lock names them.
SEED_PACKAGES = frozenset({"pip", "setuptools", "wheel"})


class BenchError(RuntimeError):
    pass


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


@dataclass
class Timed:
    seconds: float
    stdout: str
    stderr: str


def run(
    args: Sequence[str], env: Mapping[str, str], check: bool = True, sync: bool = True
) -> Timed:
    """Run one command; wall time measured around the whole process.

    With `sync`, dirty pages left by the previous step (pip writes hundreds of MB) are flushed
    first, so their writeback is not billed to this command.
    """
    if sync:
        os.sync()
    start = time.perf_counter()
    result = subprocess.run(
        list(args),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    seconds = time.perf_counter() - start
    if check and result.returncode != 0:
        raise BenchError(
            f"command failed (exit {result.returncode}): {' '.join(map(str, args))}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return Timed(seconds, result.stdout, result.stderr)


def run_all(commands: Sequence[tuple[Sequence[str], Mapping[str, str]]]) -> float:
    """Seconds of several commands run one after the other, as one user would type them.

    One flush before the first: none between them, as codenv's single process has none inside.
    """
    timed = [run(args, env, sync=index == 0) for index, (args, env) in enumerate(commands)]
    return sum(result.seconds for result in timed)


def du_bytes(paths: Sequence[Path]) -> int:
    """Apparent size of `paths` together; GNU du counts a hard-linked file once."""
    result = subprocess.run(
        ["du", "-sbc", *map(str, paths)], capture_output=True, text=True, check=True
    )
    last = result.stdout.strip().splitlines()[-1]
    return int(last.split()[0])


def pin(name: str, version: str) -> str:
    """`name==version` with the name normalized (PEP 503), to compare installs."""
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def installed_pins(uv: str, env: Mapping[str, str], python: Path) -> set[str]:
    """What an env holds, as pins, without the installers venv seeds."""
    listed = run([uv, "pip", "list", "--format", "json", "--python", str(python)], env, sync=False)
    return {
        pin(package["name"], package["version"])
        for package in json.loads(listed.stdout)
        if package["name"].lower() not in SEED_PACKAGES
    }


# --------------------------------------------------------------------------- environments


@dataclass
class Envs:
    """The process environments of the three ways, built once."""

    codenv: dict[str, str]
    pip: dict[str, str]
    uv: dict[str, str]


def make_envs(home: Path, index_url: str, keep_dont_write_bytecode: bool) -> Envs:
    base = dict(os.environ)
    base.pop("VIRTUAL_ENV", None)
    if not keep_dont_write_bytecode:
        # Not part of a user's usual shell; this machine sets it globally.
        base.pop("PYTHONDONTWRITEBYTECODE", None)
    codenv = {**base, "CODENV_HOME": str(home), "CODENV_INDEX_URL": index_url, "NO_COLOR": "1"}
    codenv.pop("CODENV_RESOLUTION_TTL", None)
    # pip: no config file, no PIP_* variables (this machine has a global pip config), except
    # the certificate bundle, which says whom to trust, not how to install.
    pip = {key: value for key, value in base.items() if not key.startswith("PIP_")}
    pip["PIP_CONFIG_FILE"] = os.devnull
    if "PIP_CERT" in base:
        pip["PIP_CERT"] = base["PIP_CERT"]
    # uv: the same shared cache codenv uses, never download an interpreter, no config files.
    uv = {key: value for key, value in base.items() if not key.startswith("UV_")}
    uv.update(
        {
            "UV_CACHE_DIR": str(home / "cache" / "uv"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
            "UV_NO_PROGRESS": "1",
        }
    )
    return Envs(codenv, pip, uv)


# --------------------------------------------------------------------------- tools


def find_codenv() -> str:
    beside = Path(sys.executable).parent / "codenv"
    if beside.exists():
        return str(beside)
    found = shutil.which("codenv")
    if not found:
        raise BenchError("codenv not found: run this with the project's .venv/bin/python")
    return found


def find_uv() -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import uv; print(uv.find_uv_bin())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def project_revision() -> str:
    """Where the measured codenv comes from, and its commit ("-dirty": uncommitted changes)."""
    spec = importlib.util.find_spec("codenv")
    if spec is None or spec.origin is None:
        return "unknown"
    package = Path(spec.origin).parent
    try:
        result = subprocess.run(
            ["git", "-C", str(package), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return f"{package} (git not found)"
    commit = result.stdout.strip() if result.returncode == 0 else ""
    return f"{package} ({'git ' + commit if commit else 'not a git checkout'})"
