"""Build tiny sample Python distributions on the fly, with no build tools and no network.

Wheels are written by hand; sdists, source trees and local archives ship an in-tree
PEP 517/660 backend (``inline_backend``, copied as ``backend.py``), so pip and uv can
build and install them on any interpreter from Python 3.6 up without fetching anything.
The writers in ``inline_backend`` are the only implementation: this module just calls them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import inline_backend as backend

__all__ = [
    "build_sdist",
    "build_wheel",
    "dist_name",
    "import_name",
    "make_tar_archive",
    "make_zip_archive",
    "write_source_tree",
]

dist_name = backend.dist_name


def import_name(name: str) -> str:
    """Top-level package name of a sample project: ``my-pkg`` -> ``my_pkg``."""
    return name.replace("-", "_").replace(".", "_")


def _modules(name: str, version: str, modules: Mapping[str, str] | None) -> dict[str, str]:
    if modules is not None:
        return dict(modules)
    return {f"{import_name(name)}/__init__.py": f'__version__ = "{version}"\n'}


def _config(
    name: str,
    version: str,
    requires: Sequence[str],
    requires_python: str | None,
    modules: Mapping[str, str],
    fail_build: str | None = None,
) -> dict[str, Any]:
    # top_level tells the backend which paths are the importable payload of the project.
    top_level = sorted({path.split("/", 1)[0] for path in modules})
    return {
        "name": name,
        "version": version,
        "requires": list(requires),
        "requires_python": requires_python,
        "top_level": top_level,
        "fail_build": fail_build,
    }


def build_wheel(
    out_dir: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    modules: Mapping[str, str] | None = None,
    requires_python: str | None = None,
) -> Path:
    """Write ``{dist}-{version}-py3-none-any.whl`` into ``out_dir`` and return its path.

    ``modules`` maps paths inside the wheel (``pkg/__init__.py``) to source text; by
    default the package defines ``__version__``.
    """
    files = _modules(name, version, modules)
    config = _config(name, version, requires, requires_python, files)
    out_dir.mkdir(parents=True, exist_ok=True)
    members = [(path, text.encode()) for path, text in sorted(files.items())]
    return out_dir / backend.write_wheel(str(out_dir), config, members)


def _pyproject(config: Mapping[str, Any]) -> str:
    # json.dumps yields valid TOML basic strings / arrays for these simple values.
    lines = [
        "[build-system]",
        "requires = []",
        f"build-backend = {json.dumps(backend.BACKEND_NAME.removesuffix('.py'))}",
        'backend-path = ["."]',
        "",
        "[project]",
        f"name = {json.dumps(config['name'])}",
        f"version = {json.dumps(config['version'])}",
        f"dependencies = {json.dumps(config['requires'])}",
    ]
    if config["requires_python"]:
        lines.append(f"requires-python = {json.dumps(config['requires_python'])}")
    return "\n".join(lines) + "\n"


def write_source_tree(
    dir: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    modules: Mapping[str, str] | None = None,
    requires_python: str | None = None,
    fail_build: str | None = None,
) -> Path:
    """Write the project as an unpacked source tree directly in ``dir``; return ``dir``.

    Usable for ``-e /path`` installs, for plain ``/path`` installs, and for archiving.
    """
    files = _modules(name, version, modules)
    config = _config(name, version, requires, requires_python, files, fail_build)
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "pyproject.toml").write_text(_pyproject(config))
    (dir / backend.BACKEND_NAME).write_text(Path(backend.__file__).read_text())
    (dir / backend.CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    for path, text in files.items():
        target = dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return dir


def build_sdist(
    out_dir: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    modules: Mapping[str, str] | None = None,
    requires_python: str | None = None,
    fail_build: str | None = None,
) -> Path:
    """Write ``{dist}-{version}.tar.gz`` into ``out_dir`` and return its path.

    With ``fail_build``, the sdist's backend raises ``RuntimeError(fail_build)`` when an
    installer asks it for metadata or a wheel (building the sdist itself still works).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = write_source_tree(
            Path(scratch) / "src",
            name,
            version,
            requires=requires,
            modules=modules,
            requires_python=requires_python,
            fail_build=fail_build,
        )
        config = json.loads((root / backend.CONFIG_NAME).read_text())
        return out_dir / backend.write_sdist(str(out_dir), str(root), config)


def _tree_members(src_dir: Path, top: str) -> list[tuple[str, bytes]]:
    # Bytecode caches appear as soon as anything imported the backend; never ship them.
    return [
        (f"{top}/{path.relative_to(src_dir).as_posix()}", path.read_bytes())
        for path in sorted(src_dir.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]


def _archive_top(out: Path, suffix: str) -> str:
    if not out.name.endswith(suffix):
        raise ValueError(f"{out.name!r} must end with {suffix!r}")
    return out.name.removesuffix(suffix)


def make_zip_archive(src_dir: Path, out: Path) -> Path:
    """Zip ``src_dir`` as ``out`` (``.../pkg-1.0.zip``) with top-level dir ``pkg-1.0/``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    backend.write_zip(str(out), _tree_members(src_dir, _archive_top(out, ".zip")))
    return out


def make_tar_archive(src_dir: Path, out: Path) -> Path:
    """Like :func:`make_zip_archive` for ``.../pkg-1.0.tar.gz``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    backend.write_tar_gz(str(out), _tree_members(src_dir, _archive_top(out, ".tar.gz")))
    return out


def retag_wheel(wheel: Path, tag: str) -> Path:
    """Make `wheel`'s WHEEL file name `tag` while its file name keeps its own tags, as some
    real releases do (e.g. xgboost 1.4.2: py3-none-manylinux2010 named, cp38 inside)."""
    with zipfile.ZipFile(wheel) as source:
        members = {name: source.read(name) for name in source.namelist()}
    name = next(member for member in members if member.endswith(".dist-info/WHEEL"))
    members[name] = members[name].replace(
        f"Tag: {backend.WHEEL_TAG}".encode(), f"Tag: {tag}".encode()
    )
    record = next(member for member in members if member.endswith(".dist-info/RECORD"))
    digest = base64.urlsafe_b64encode(hashlib.sha256(members[name]).digest()).rstrip(b"=")
    entry = f"{name},sha256={digest.decode()},{len(members[name])}"
    lines = [
        entry if line.startswith(f"{name},") else line
        for line in members[record].decode().splitlines()
    ]
    members[record] = ("\n".join(lines) + "\n").encode()
    with zipfile.ZipFile(wheel, "w") as out:
        for member, data in members.items():
            out.writestr(member, data)
    return wheel
