"""Jupyter kernelspecs of envs with Jupyter support, kept in `$CODENV_HOME/kernels`.

A kernelspec starts the env's `current` interpreter, so it follows updates and rollbacks; its
`env` holds the resources env vars and is rewritten whenever they may have changed. Jupyter
installations see it through a symlink (`codenv kernels install`), so they never hold a stale
copy. A version (an imported revision, kept) has a kernelspec of its own, `codenv-NAME.vN`,
that starts that revision's interpreter whichever is active.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from codenv.domain.errors import Conflict

PREFIX = "codenv-"
# Between an env's kernel name and a version number: `.` is in no env name (and Jupyter allows
# it in kernel names), so `codenv-a.v1` (env a, version 1) is no env's own kernel.
_VERSION_MARK = ".v"


def kernel_name(env_name: str, number: int | None = None) -> str:
    """The env's kernel, or version `number`'s."""
    # Jupyter compares kernel names case-insensitively; env names are unique that way too.
    base = PREFIX + env_name.lower()
    return base if number is None else f"{base}{_VERSION_MARK}{number}"


def display_name(env_name: str, number: int | None = None) -> str:
    return (
        f"Python (codenv {env_name})" if number is None else f"Python (codenv {env_name} v{number})"
    )


def write_kernelspec(
    kernels_dir: Path,
    env_name: str,
    python: Path,
    env_vars: Mapping[str, str],
    number: int | None = None,
) -> Path:
    directory = kernels_dir / kernel_name(env_name, number)
    directory.mkdir(parents=True, exist_ok=True)
    about: dict[str, object] = {"env": env_name}
    if number is not None:
        about["version"] = number
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name(env_name, number),
        "language": "python",
        "env": {"VIRTUAL_ENV": str(python.parent.parent), **env_vars},
        "metadata": {"codenv": about},
    }
    temporary = directory / "kernel.json.tmp"
    temporary.write_text(json.dumps(spec, indent=2), "utf-8")
    os.replace(temporary, directory / "kernel.json")
    return directory


def remove_kernelspec(kernels_dir: Path, env_name: str, number: int | None = None) -> None:
    shutil.rmtree(kernels_dir / kernel_name(env_name, number), ignore_errors=True)


def version_kernelspecs(kernels_dir: Path, env_name: str) -> list[int]:
    """The versions of the env that have a kernelspec."""
    stem = kernel_name(env_name) + _VERSION_MARK
    found = []
    for directory in kernels_dir.glob(f"{stem}*"):
        suffix = directory.name.removeprefix(stem)
        if suffix.isascii() and suffix.isdigit():
            found.append(int(suffix))
    return sorted(found)


def jupyter_user_kernels_dir(environ: Mapping[str, str]) -> Path:
    """Where Jupyter looks for a user's kernels on Linux (JUPYTER_DATA_DIR wins)."""
    data = environ.get("JUPYTER_DATA_DIR")
    if data:
        return Path(data) / "kernels"
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "jupyter" / "kernels"


def prefix_kernels_dir(prefix: Path) -> Path:
    return prefix / "share" / "jupyter" / "kernels"


def install_kernelspec(
    kernels_dir: Path, env_name: str, target_dir: Path, number: int | None = None
) -> Path:
    """Link the env's kernelspec (or version `number`'s) into a Jupyter kernels directory."""
    source = kernels_dir / kernel_name(env_name, number)
    link = target_dir / kernel_name(env_name, number)
    if link.is_symlink() and Path(os.readlink(link)) == source:
        return link
    if link.exists() or link.is_symlink():
        raise Conflict(f"{link} exists and is not codenv's kernel of {env_name!r}", field="target")
    target_dir.mkdir(parents=True, exist_ok=True)
    link.symlink_to(source, target_is_directory=True)
    return link


def uninstall_kernelspec(
    kernels_dir: Path, env_name: str, target_dir: Path, number: int | None = None
) -> bool:
    link = target_dir / kernel_name(env_name, number)
    if link.is_symlink() and Path(os.readlink(link)) == kernels_dir / kernel_name(env_name, number):
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
