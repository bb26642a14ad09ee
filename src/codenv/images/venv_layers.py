"""Which files of a venv, an interpreter or a directory go in which image layer.

An env's image is the base, then the interpreter, then one layer per large distribution
(largest first), then one small head layer with everything else. A distribution's layer holds
only what that distribution installed, at the same in-image path for every env of a container
config, written reproducibly: two envs with numpy 2.1.3 push the same numpy layer, and the
registry and the nodes keep it once.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from codenv.domain.errors import InvalidInput
from codenv.images.layers import LayerEntry

MAX_RECORD_BYTES = 64 * 1024 * 1024
# Standard-library parts a running program never imports: tests, IDLE, Tk demos, pip's wheel.
_STDLIB_LEFT_OUT = frozenset(
    {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"}
)
_STDLIB_TEST_DIRS = frozenset({"test", "tests", "idle_test"})
_MINOR = re.compile(r"python3\.\d+")
# A .pyc's flags word (bytes 4-8): bit 0 set means validated by the source's hash.
_PYC_HASH_BASED = 0b1


@dataclass(frozen=True)
class LayerSpec:
    """What one layer will hold, before it is written."""

    created_by: str
    entries: tuple[LayerEntry, ...]
    size: int  # the sum of the regular files' sizes


@dataclass(frozen=True)
class _Found:
    path: Path
    status: os.stat_result


def _walk(top: Path, skip: Callable[[Path], bool] = lambda _path: False) -> Iterator[_Found]:
    """`top` and everything under it, never following a symlink, without the paths `skip`
    accepts (nor what lies under them). Sockets, fifos and devices are left out."""
    pending = [top]
    while pending:
        path = pending.pop()
        if skip(path):
            continue
        status = os.lstat(path)
        if stat.S_ISDIR(status.st_mode):
            yield _Found(path, status)
            with os.scandir(path) as children:
                pending.extend(Path(child.path) for child in children)
        elif stat.S_ISREG(status.st_mode) or stat.S_ISLNK(status.st_mode):
            yield _Found(path, status)


def _spec(
    created_by: str, found: Iterable[_Found], root: Path, place: PurePosixPath, keep: bool
) -> LayerSpec:
    """`found` (host paths under `root`) placed at `place` in the image, in image-path order."""
    entries: list[LayerEntry] = []
    size = 0
    for item in found:
        image_path = place.joinpath(*item.path.relative_to(root).parts)
        entries.append(LayerEntry(image_path, item.path, keep_mtime=keep))
        if stat.S_ISREG(item.status.st_mode):
            size += item.status.st_size
    entries.sort(key=lambda entry: entry.image_path.parts)
    return LayerSpec(created_by, tuple(entries), size)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def tree_layer(root: Path, image_root: PurePosixPath, created_by: str) -> LayerSpec:
    """A whole directory (a resources dir) placed at `image_root`; symlinks kept, not followed."""
    if not image_root.is_absolute():
        raise InvalidInput(f"not an absolute image path: {image_root}", field="image_path")
    if not root.is_dir() or root.is_symlink():
        raise InvalidInput(f"{root} is not a directory", field="root")
    return _spec(created_by, _walk(root), root, image_root, keep=False)


def _stale_pyc(found: _Found) -> bool:
    """A timestamp-based .pyc: stale in an image (every source mtime there is 0), and its
    header differs between two installs of the same files, which would split shared layers."""
    if not found.path.name.endswith(".pyc") or not stat.S_ISREG(found.status.st_mode):
        return False
    with found.path.open("rb") as handle:
        header = handle.read(8)
    return len(header) < 8 or not int.from_bytes(header[4:8], "little") & _PYC_HASH_BASED


@dataclass(frozen=True)
class _Package:
    name: str  # normalized
    label: str
    tops: tuple[Path, ...]
    found: tuple[_Found, ...]
    size: int


def venv_layers(
    venv: Path,
    image_path: PurePosixPath,
    *,
    min_bytes: int = 1024 * 1024,
    max_package_layers: int = 48,
    shared: Mapping[str, int] | None = None,
) -> list[LayerSpec]:
    """The layers of a built venv that is to appear at `image_path` in the image.

    One layer per distribution of at least `min_bytes` (its top-level directories under
    site-packages, from its RECORD), largest first, at most `max_package_layers`; then one
    head layer with everything else: every .dist-info (they differ between envs), bin/,
    pyvenv.cfg, single-module distributions, .pth files, small distributions, directories two
    distributions share (namespace packages) and anything no RECORD names.
    Timestamp-based .pyc files are left out (see `_stale_pyc`); hash-based ones are kept.
    `shared` ranks distributions by how many envs share them (normalized name → count): the
    package layers are ordered by it first, then by size, so that two images begin with the
    same layers as far as their envs share distributions (a runtime reuses a layer only
    under the same layers below it).
    """
    if not image_path.is_absolute():
        raise InvalidInput(f"not an absolute image path: {image_path}", field="image_path")
    if not venv.is_dir() or venv.is_symlink() or not (venv / "pyvenv.cfg").is_file():
        raise InvalidInput(f"{venv} is not a venv (no pyvenv.cfg)", field="venv")
    packages = sorted(_packages(venv), key=lambda package: (-package.size, package.label))
    chosen = [package for package in packages if package.size >= min_bytes]
    chosen = chosen[: max(max_package_layers, 0)]
    rank = shared or {}
    chosen.sort(key=lambda package: (-rank.get(package.name, 0), -package.size, package.label))
    taken = frozenset(top for package in chosen for top in package.tops)
    layers = [_spec(package.label, package.found, venv, image_path, False) for package in chosen]
    rest = (item for item in _walk(venv, taken.__contains__) if not _stale_pyc(item))
    return [*layers, _spec("codenv: env head", rest, venv, image_path, keep=False)]


def _packages(venv: Path) -> list[_Package]:
    """Each distribution with the top-level directories under site-packages it alone owns."""
    owners: dict[Path, list[str]] = {}
    for site in sorted((venv / "lib").glob("python3*/site-packages")):
        if site.is_symlink() or not site.is_dir():
            continue
        for dist_info in sorted(site.glob("*.dist-info")):
            for top in _owned_tops(site, dist_info):
                owners.setdefault(top, []).append(dist_info.name)
    by_dist: dict[str, list[Path]] = {}
    for top, names in owners.items():
        if len(names) == 1:  # a directory two distributions share goes to the head layer
            by_dist.setdefault(names[0], []).append(top)
    packages = []
    for dist_info_name, tops in sorted(by_dist.items()):
        found = tuple(item for top in tops for item in _walk(top) if not _stale_pyc(item))
        size = sum(item.status.st_size for item in found if stat.S_ISREG(item.status.st_mode))
        name, _, version = dist_info_name.removesuffix(".dist-info").rpartition("-")
        label = f"codenv: {name} {version} ({_megabytes(size)})"
        normalized = re.sub(r"[-_.]+", "-", name).lower()
        packages.append(_Package(normalized, label, tuple(sorted(tops)), found, size))
    return packages


def _owned_tops(site: Path, dist_info: Path) -> set[Path]:
    """The top-level directories under `site` that the RECORD of `dist_info` installed into."""
    record = dist_info / "RECORD"
    try:
        with record.open("rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
    except OSError:
        return set()
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidInput(f"{record} is larger than {MAX_RECORD_BYTES} bytes", field="venv")
    names: set[str] = set()
    for row in csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"))):
        parts = PurePosixPath(row[0]).parts if row else ()
        # Single modules (six.py) and what lies outside site-packages (../../../bin) stay in
        # the head layer, like the metadata directories.
        if len(parts) < 2 or parts[0] in ("/", "__pycache__") or ".." in parts:
            continue
        if not parts[0].endswith((".dist-info", ".data")):
            names.add(parts[0])
    tops = (site / name for name in names)
    return {top for top in tops if top.is_dir() and not top.is_symlink()}


def interpreter_layer(prefix: Path) -> LayerSpec:
    """The interpreter installation at its own path (a pyenv prefix), mtimes kept.

    bin/python3.X and the links to it, lib/libpython*, the standard library with its compiled
    files (not the -O ones); without site-packages, the standard library's tests, IDLE,
    tkinter, turtledemo, ensurepip, the static library (config-3.X-*), include/ and share/.
    """
    library = [path for path in (prefix / "lib").glob("python3.*") if _MINOR.fullmatch(path.name)]
    if not prefix.is_absolute() or len(library) != 1 or not library[0].is_dir():
        raise InvalidInput(f"{prefix} is not a Python 3 installation prefix", field="prefix")
    stdlib = library[0]
    executable = prefix / "bin" / stdlib.name
    if not executable.is_file() or executable.is_symlink():
        raise InvalidInput(f"{executable} is missing", field="prefix")
    found = [_Found(path, os.lstat(path)) for path in [executable, *_links_to(executable)]]
    found += [
        _Found(path, os.lstat(path))
        for path in (prefix / "lib").glob("libpython*")
        if path.is_symlink() or path.is_file()
    ]

    def left_out(path: Path) -> bool:
        if path.parent == stdlib:
            return path.name in _STDLIB_LEFT_OUT or path.name.startswith("config-3.")
        return path.name in _STDLIB_TEST_DIRS and path.is_dir() and not path.is_symlink()

    # .opt-1/.opt-2.pyc serve only `python -O`: a third of the layer for a mode nobody runs.
    found += (item for item in _walk(stdlib, left_out) if ".opt-" not in item.path.name)
    spec = _spec("", found, Path("/"), PurePosixPath("/"), keep=True)
    label = f"codenv: interpreter {prefix} ({_megabytes(spec.size)})"
    return LayerSpec(label, spec.entries, spec.size)


def _links_to(executable: Path) -> list[Path]:
    """The symlinks in the executable's directory that lead to it (python, python3)."""
    links = []
    target = executable.resolve()
    with os.scandir(executable.parent) as children:
        for child in children:
            path = Path(child.path)
            if child.is_symlink() and path.resolve() == target:
                links.append(path)
    return links
