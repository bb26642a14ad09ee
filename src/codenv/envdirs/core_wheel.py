"""Writing a pure-Python wheel by hand: how codenv ships its core package into envs."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import zipfile
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType

# Fixed timestamps make the same sources give the same bytes, so the wheel's digest only
# changes when its content does.
_EPOCH = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _metadata(name: str, version: str, requires: Sequence[str], requires_python: str) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {requirement}" for requirement in requires)
    return "\n".join(lines) + "\n"


def write_wheel(
    out_dir: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    requires: Sequence[str] = (),
    requires_python: str = "",
) -> Path:
    """Write `{name}-{version}-py3-none-any.whl` holding `files` (archive path → bytes)."""
    dist = re.sub(r"[-_.]+", "_", name).lower()
    dist_info = f"{dist}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = _metadata(name, version, requires, requires_python).encode()
    contents[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: codenv\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in contents.items()]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{dist}-{version}-py3-none-any.whl"
    temporary = target.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(contents.items()):
            archive.writestr(zipfile.ZipInfo(path, _EPOCH), data)
    temporary.replace(target)
    return target


@functools.cache
def core_package_files() -> Mapping[str, bytes]:
    # Read once per process: the sources are codenv's own code, which a deployment replaces
    # by restarting it; an env's show reads them (its base packages) on every request.
    source = resources.files("codenv.core_package").joinpath("codenv_runtime")
    return MappingProxyType(
        {
            f"codenv_runtime/{entry.name}": entry.read_bytes()
            for entry in source.iterdir()
            if entry.name.endswith(".py")
        }
    )


def core_package_version() -> str:
    text = core_package_files()["codenv_runtime/__init__.py"].decode()
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("codenv_runtime/__init__.py has no __version__")
    return match.group(1)


def ensure_core_wheel(wheels_dir: Path) -> Path:
    """The core package's wheel, (re)written when missing or out of date with the sources."""
    version = core_package_version()
    target = wheels_dir / f"codenv_runtime-{version}-py3-none-any.whl"
    files = core_package_files()
    try:
        seen = _stamp(target)
    except FileNotFoundError:
        seen = None
    # A wheel checked already and not touched since is not unzipped again.
    if seen is not None and _CHECKED.get(target) == seen:
        return target
    if seen is not None:
        with zipfile.ZipFile(target) as archive:
            current = {n: archive.read(n) for n in archive.namelist() if n in files}
        if current == files:
            _CHECKED[target] = seen
            return target
    written = write_wheel(wheels_dir, "codenv-runtime", version, files, requires_python=">=3.6")
    _CHECKED[written] = _stamp(written)
    return written


# The core wheels found up to date, with the (inode, size, mtime) they had then.
_CHECKED: dict[Path, tuple[int, int, int]] = {}


def _stamp(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return status.st_ino, status.st_size, status.st_mtime_ns
