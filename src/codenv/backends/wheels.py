"""Fetching the wheels a lock needs, for a bundle that installs with no network.

uv keeps the wheels it installed unpacked in its cache and has no download command, so the
files come from the index again, through pip's `download` run by the env's own interpreter
(which picks the wheels that interpreter installs), with pip's own cache on the node: an
export repeated, or run while the index is away, takes what that cache holds.

Only wheels (`--only-binary :all:`): downloading an sdist would prepare its metadata, which
runs package code, and an sdist in a bundle could not be built on a node with no network.
"""

from __future__ import annotations

from pathlib import Path

from codenv.backends.base import Run, clean_environ, run_logged
from codenv.backends.pip import pip_options
from codenv.domain.errors import BuildFailed
from codenv.domain.locks import LockEntry, parse_lock, render_lock

_QUIET = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _download(run: Run, interpreter: str, lock: Path, dest: Path, cache: Path) -> None:
    args, variables = pip_options(run.options)
    command = [
        interpreter,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--require-hashes",
        "--only-binary",
        ":all:",
        "--dest",
        str(dest),
        "--cache-dir",
        str(cache),
        "--retries",
        "1",
        "--timeout",
        "15",
        "-r",
        str(lock),
        *args,
    ]
    held: list[str] = []
    run_logged(
        "downloading wheels", command, run, clean_environ({**_QUIET, **variables}), held=held
    )


def _fetched(entry: LockEntry, dest: Path) -> bool:
    prefix = entry.name.replace("-", "_").lower()
    return any(
        path.name.lower().replace("-", "_").startswith(f"{prefix}_{entry.version}".lower())
        for path in dest.glob("*.whl")
    )


def download_wheels(run: Run, interpreter: str, lock: str, dest: Path, cache: Path) -> None:
    """Every wheel of `lock` into `dest`, hashes checked by pip. BuildFailed naming the
    packages that could not be had (no index and not in the cache, or no wheel at all)."""
    dest.mkdir(parents=True, exist_ok=True)
    lock_file = dest.parent / "download.lock"
    lock_file.write_text(lock, "utf-8")
    try:
        _download(run, interpreter, lock_file, dest, cache)
        return
    except BuildFailed as error:
        first = error
    finally:
        lock_file.unlink(missing_ok=True)
    missing = _missing(
        run, interpreter, [e for e in parse_lock(lock) if not _fetched(e, dest)], dest, cache
    )
    names = ", ".join(f"{e.name}=={e.version}" for e in missing) or "(see pip's output)"
    raise BuildFailed(
        "the wheels could not all be had from the index or the local cache; missing: "
        f"{names}\n{first.message}"
    )


def _missing(
    run: Run, interpreter: str, entries: list[LockEntry], dest: Path, cache: Path
) -> list[LockEntry]:
    """pip stops at the first failure: try the rest one by one to name them all."""
    missing = []
    single = dest.parent / "single.lock"
    for entry in entries:
        single.write_text(render_lock([entry]), "utf-8")
        try:
            _download(run, interpreter, single, dest, cache)
        except BuildFailed:
            missing.append(entry)
    single.unlink(missing_ok=True)
    return missing
