"""Jupyter kernelspecs of envs with Jupyter support, kept in `$CODENV_HOME/kernels`.

A kernelspec starts the env's `current` interpreter, so it follows updates and rollbacks; its
`env` holds the resources env vars and is rewritten whenever they may have changed. Jupyter
installations see it through a symlink (`codenv kernels install`), so they never hold a stale
copy.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from codenv.domain.errors import Conflict

PREFIX = "codenv-"


def kernel_name(env_name: str) -> str:
    # Jupyter compares kernel names case-insensitively; env names are unique that way too.
    return PREFIX + env_name.lower()


def display_name(env_name: str) -> str:
    return f"Python (codenv {env_name})"


def write_kernelspec(
    kernels_dir: Path, env_name: str, python: Path, env_vars: Mapping[str, str]
) -> Path:
    directory = kernels_dir / kernel_name(env_name)
    directory.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name(env_name),
        "language": "python",
        "env": {"VIRTUAL_ENV": str(python.parent.parent), **env_vars},
        "metadata": {"codenv": {"env": env_name}},
    }
    temporary = directory / "kernel.json.tmp"
    temporary.write_text(json.dumps(spec, indent=2), "utf-8")
    os.replace(temporary, directory / "kernel.json")
    return directory


def remove_kernelspec(kernels_dir: Path, env_name: str) -> None:
    shutil.rmtree(kernels_dir / kernel_name(env_name), ignore_errors=True)


def jupyter_user_kernels_dir(environ: Mapping[str, str]) -> Path:
    """Where Jupyter looks for a user's kernels on Linux (JUPYTER_DATA_DIR wins)."""
    data = environ.get("JUPYTER_DATA_DIR")
    if data:
        return Path(data) / "kernels"
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "jupyter" / "kernels"


def prefix_kernels_dir(prefix: Path) -> Path:
    return prefix / "share" / "jupyter" / "kernels"


def install_kernelspec(kernels_dir: Path, env_name: str, target_dir: Path) -> Path:
    """Link the env's kernelspec into a Jupyter kernels directory."""
    source = kernels_dir / kernel_name(env_name)
    link = target_dir / kernel_name(env_name)
    if link.is_symlink() and Path(os.readlink(link)) == source:
        return link
    if link.exists() or link.is_symlink():
        raise Conflict(f"{link} exists and is not codenv's kernel of {env_name!r}", field="target")
    target_dir.mkdir(parents=True, exist_ok=True)
    link.symlink_to(source, target_is_directory=True)
    return link


def uninstall_kernelspec(kernels_dir: Path, env_name: str, target_dir: Path) -> bool:
    link = target_dir / kernel_name(env_name)
    if link.is_symlink() and Path(os.readlink(link)) == kernels_dir / kernel_name(env_name):
        link.unlink()
        return True
    return False


def list_kernelspecs(kernels_dir: Path) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for directory in sorted(kernels_dir.glob(f"{PREFIX}*")):
        try:
            spec = json.loads((directory / "kernel.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        found.append({"name": directory.name, "path": str(directory), **spec})
    return found
