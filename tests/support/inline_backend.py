"""A minimal PEP 517 / PEP 660 build backend for the sample projects the tests build.

This one file has two jobs, so the archive-writing code exists exactly once:

* ``support.pkgbuild`` imports it to write wheels and sdists directly;
* ``support.pkgbuild`` copies its source as ``backend.py`` into every sdist and source
  tree, where installers load it through ``backend-path = ["."]``.

Installers run it with the *target* interpreter, so it imports only the standard
library and stays valid Python 3.6: no walrus, no ``f"{x=}"``, no
``from __future__ import annotations``. Subscripted annotations are quoted so that
``list[str]`` is never evaluated on old interpreters.

The project is described by ``backend.json`` next to it (JSON because Python 3.6 has
no TOML parser): name, version, requires, requires_python, top_level, fail_build.
"""

import base64
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import zipfile
from typing import Any

CONFIG_NAME = "backend.json"
BACKEND_NAME = "backend.py"
# Files that make up the build machinery of a sample project (shipped in sdists).
BUILD_FILES = ("pyproject.toml", BACKEND_NAME, CONFIG_NAME)
WHEEL_TAG = "py3-none-any"
# Fixed timestamps make archives byte-for-byte reproducible, so hashes stay stable.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_TAR_MTIME = 315532800  # 1980-01-01, same instant as _ZIP_DATE


def dist_name(name: str) -> str:
    """Name as spelled in wheel and sdist file names (PEP 427 / PEP 625)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def metadata_text(config: "dict[str, Any]") -> str:
    """Core metadata shared by a wheel's METADATA and an sdist's PKG-INFO."""
    lines = [
        "Metadata-Version: 2.1",
        "Name: " + str(config["name"]),
        "Version: " + str(config["version"]),
    ]
    if config.get("requires_python"):
        lines.append("Requires-Python: " + str(config["requires_python"]))
    for requirement in config.get("requires") or ():
        lines.append("Requires-Dist: " + requirement)
    return "\n".join(lines) + "\n\n"


def wheel_text() -> str:
    return (
        "Wheel-Version: 1.0\nGenerator: codenv-tests\nRoot-Is-Purelib: true\nTag: "
        + WHEEL_TAG
        + "\n"
    )


def dist_info_name(config: "dict[str, Any]") -> str:
    return dist_name(str(config["name"])) + "-" + str(config["version"]) + ".dist-info"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return path + ",sha256=" + digest.decode("ascii") + "," + str(len(data))


def write_wheel(
    wheel_directory: str, config: "dict[str, Any]", files: "list[tuple[str, bytes]]"
) -> str:
    """Write a pure-Python wheel holding ``files`` plus its dist-info; return its name."""
    info = dist_info_name(config)
    members = list(files)
    members.append((info + "/METADATA", metadata_text(config).encode("utf-8")))
    members.append((info + "/WHEEL", wheel_text().encode("utf-8")))
    record = [_record_line(path, data) for path, data in members]
    record.append(info + "/RECORD,,")  # RECORD cannot hash itself
    members.append((info + "/RECORD", ("\n".join(record) + "\n").encode("utf-8")))
    filename = info[: -len(".dist-info")] + "-" + WHEEL_TAG + ".whl"
    write_zip(os.path.join(wheel_directory, filename), members)
    return filename


def write_zip(path: str, members: "list[tuple[str, bytes]]") -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, _ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


def write_tar_gz(path: str, members: "list[tuple[str, bytes]]") -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = _TAR_MTIME
            archive.addfile(info, io.BytesIO(data))
    # GzipFile with mtime=0 and no file name keeps the gzip header reproducible too.
    with open(path, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as compressed:
        compressed.write(buffer.getvalue())


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def collect_files(root: str, top_level: "list[str]") -> "list[tuple[str, bytes]]":
    """The importable files under ``root``: each top-level module or package, recursively.

    Walking at build time (rather than listing files in the config) lets editable and
    source-tree tests add files; bytecode caches are skipped because importing the
    backend itself writes one into the source tree.
    """
    found = []
    for entry in top_level:
        path = os.path.join(root, entry)
        if os.path.isfile(path):
            found.append((entry, _read(path)))
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for filename in sorted(f for f in filenames if not f.endswith(".pyc")):
                full = os.path.join(dirpath, filename)
                found.append((os.path.relpath(full, root).replace(os.sep, "/"), _read(full)))
    return found


def write_sdist(sdist_directory: str, root: str, config: "dict[str, Any]") -> str:
    """Write ``{name}-{version}.tar.gz`` of the project at ``root``; return its name."""
    base = dist_name(str(config["name"])) + "-" + str(config["version"])
    members = [(name, _read(os.path.join(root, name))) for name in BUILD_FILES]
    members += collect_files(root, config["top_level"])
    members.append(("PKG-INFO", metadata_text(config).encode("utf-8")))
    filename = base + ".tar.gz"
    write_tar_gz(
        os.path.join(sdist_directory, filename),
        [(base + "/" + name, data) for name, data in members],
    )
    return filename


# --- PEP 517 / PEP 660 hooks (the installer runs them with cwd = project root) ---


def _load_config() -> "dict[str, Any]":
    with open(CONFIG_NAME, encoding="utf-8") as handle:
        return json.load(handle)


def _fail_if_asked(config: "dict[str, Any]") -> None:
    # Lets a test prove that an installer carries the backend's error into its output.
    if config.get("fail_build"):
        raise RuntimeError(config["fail_build"])


def get_requires_for_build_wheel(config_settings: object = None) -> "list[str]":
    return []


def get_requires_for_build_editable(config_settings: object = None) -> "list[str]":
    return []


def get_requires_for_build_sdist(config_settings: object = None) -> "list[str]":
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: object = None
) -> str:
    config = _load_config()
    _fail_if_asked(config)
    info = dist_info_name(config)
    target = os.path.join(metadata_directory, info)
    if not os.path.isdir(target):
        os.makedirs(target)
    for name, text in (("METADATA", metadata_text(config)), ("WHEEL", wheel_text())):
        with open(os.path.join(target, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    return info


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: object = None
) -> str:
    return prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(
    wheel_directory: str, config_settings: object = None, metadata_directory: object = None
) -> str:
    config = _load_config()
    _fail_if_asked(config)
    files = collect_files(os.getcwd(), config["top_level"])
    return write_wheel(wheel_directory, config, files)


def build_editable(
    wheel_directory: str, config_settings: object = None, metadata_directory: object = None
) -> str:
    """PEP 660: a wheel whose only payload is a .pth putting the live source on sys.path."""
    config = _load_config()
    _fail_if_asked(config)
    pth_name = "__editable__." + dist_name(str(config["name"])) + ".pth"
    pth = (pth_name, (os.path.abspath(os.getcwd()) + "\n").encode("utf-8"))
    return write_wheel(wheel_directory, config, [pth])


def build_sdist(sdist_directory: str, config_settings: object = None) -> str:
    return write_sdist(sdist_directory, os.getcwd(), _load_config())
