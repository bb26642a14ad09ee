"""Sample projects for build tests: slow builds, setup.py projects, a node's own package set."""

from __future__ import annotations

import json
from pathlib import Path

from support import pkgbuild

_SLOW_HOOK = """

import time as _codenv_time
_codenv_build_wheel = build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _codenv_time.sleep({seconds})
    return _codenv_build_wheel(wheel_directory, config_settings, metadata_directory)
"""


def slow_archive(workdir: Path, name: str, version: str, seconds: float) -> Path:
    """A local .tar.gz whose wheel build sleeps `seconds`: a build that is slow to install."""
    tree = pkgbuild.write_source_tree(workdir / f"{name}-{version}", name, version)
    backend = tree / "backend.py"
    backend.write_text(backend.read_text() + _SLOW_HOOK.format(seconds=seconds))
    return pkgbuild.make_tar_archive(tree, workdir / f"{name}-{version}.tar.gz")


def setup_py_project(directory: Path, name: str, version: str) -> Path:
    """A classic setuptools project (setup.py, no pyproject.toml) for editable installs."""
    package = directory / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (directory / "setup.py").write_text(
        "from setuptools import setup\n"
        f"setup(name={name!r}, version={version!r}, packages=[{name!r}])\n"
    )
    return directory


def write_node_sets(home: Path, sets: list[dict[str, object]]) -> None:
    """The node's own package sets (config/package_sets.json), beside the shipped catalog."""
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "package_sets.json").write_text(json.dumps({"sets": sets}))


SAMPLE_SET = {
    "id": "sample",
    "title": "Sample set",
    "python": {"min": "3.6", "max": "3.13"},
    "variants": {"cpu": ["alpha>=1.0"], "gpu": ["alpha>=1.0", "beta"]},
}
