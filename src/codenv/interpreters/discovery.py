"""Find the Python installations of this node: configured paths, pyenv versions, PATH."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from codenv.domain.errors import InvalidInput, UnsupportedInterpreter
from codenv.domain.pythons import Interpreter
from codenv.interpreters.probing import ProbeCache, ProbeError, ProbeResult, probe, run_probe

# Earlier wins both when two candidates are the same file and when versions tie in for_minor.
SOURCES = ("configured", "pyenv", "path")
_PATH_NAME = re.compile(r"^python3(\.\d+)?$")
# python2.N too, so an old pyenv install is listed as refused (with why) instead of ignored.
_PYENV_NAME = re.compile(r"^python[23]\.\d+$")
_MAX_PARALLEL_PROBES = 8


@dataclass(frozen=True)
class RefusedInterpreter:
    """A candidate that is not usable, with the reason a user is shown."""

    path: str
    source: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    """The interpreters of this node: usable ones sorted by version, and refused ones."""

    found: tuple[Interpreter, ...]
    refused: tuple[RefusedInterpreter, ...]

    def for_minor(self, minor: str) -> Interpreter | None:
        """The interpreter to use for "3.X": newest patch, then by source order."""
        matches = [interpreter for interpreter in self.found if interpreter.minor == minor]
        return max(matches, key=_preference, default=None)

    def minors(self) -> tuple[str, ...]:
        versions = sorted({interpreter.version_info[:2] for interpreter in self.found})
        return tuple(f"{major}.{minor}" for major, minor in versions)


def _source_rank(source: str) -> int:
    return SOURCES.index(source) if source in SOURCES else len(SOURCES)


def _preference(interpreter: Interpreter) -> tuple[tuple[int, ...], bool, int]:
    # A final release beats a pre-release of the same numbers (3.13.0 over 3.13.0rc1).
    is_final = re.fullmatch(r"\d+\.\d+\.\d+", interpreter.version) is not None
    return interpreter.version_info, is_final, -_source_rank(interpreter.source)


def check_addable(path: str) -> Interpreter:
    """Validate a path an administrator wants to register as a configured interpreter."""
    if not os.path.isabs(path):
        raise InvalidInput(
            f"interpreter path must be absolute (for example /usr/bin/python3.11), got {path!r}",
            field="path",
        )
    try:
        return probe(path, "configured")
    except UnsupportedInterpreter as exc:
        raise UnsupportedInterpreter(exc.message, field="path") from None


@dataclass(frozen=True)
class _Candidate:
    path: str
    source: str
    realpath: str


def discover(
    configured: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    cache_file: Path | None = None,
) -> Discovery:
    """Probe every candidate once (or reuse `cache_file`) and sort them into found / refused."""
    env = os.environ if environ is None else environ
    candidates = _unique(_candidate_paths(configured, env))
    cache = ProbeCache(cache_file)
    outcomes = _probe_all(candidates, cache)
    cache.save()
    found: list[Interpreter] = []
    refused: list[RefusedInterpreter] = []
    for candidate, outcome in zip(candidates, outcomes, strict=True):
        try:
            if isinstance(outcome, str):
                raise ProbeError(outcome)
            found.append(outcome.interpreter(candidate.path, candidate.source))
        except ProbeError as exc:
            refused.append(RefusedInterpreter(candidate.path, candidate.source, str(exc)))
    found.sort(key=lambda item: (item.version_info, _source_rank(item.source), item.path))
    return Discovery(found=tuple(found), refused=tuple(refused))


def _probe_all(candidates: Sequence[_Candidate], cache: ProbeCache) -> list[ProbeResult | str]:
    """One result (or refusal reason) per candidate; cache misses are probed in parallel."""
    outcomes: list[ProbeResult | str | None] = [cache.lookup(c.realpath) for c in candidates]
    misses = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if misses:
        workers = min(_MAX_PARALLEL_PROBES, len(misses))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            probed = pool.map(_try_probe, [candidates[index].path for index in misses])
            for index, outcome in zip(misses, probed, strict=True):
                outcomes[index] = outcome
                if isinstance(outcome, ProbeResult):
                    cache.store(candidates[index].realpath, outcome)
    return [outcome for outcome in outcomes if outcome is not None]


def _try_probe(path: str) -> ProbeResult | str:
    try:
        return run_probe(path)
    except ProbeError as exc:
        return str(exc)


def _unique(paths: Iterable[tuple[str, str]]) -> list[_Candidate]:
    """Drop candidates that are the same file as an earlier one (python3 -> python3.11)."""
    seen: set[str] = set()
    candidates: list[_Candidate] = []
    for path, source in paths:
        realpath = os.path.realpath(path)
        if realpath not in seen:
            seen.add(realpath)
            candidates.append(_Candidate(path, source, realpath))
    return candidates


def _candidate_paths(
    configured: Sequence[str], environ: Mapping[str, str]
) -> Iterator[tuple[str, str]]:
    for path in configured:
        yield os.path.abspath(path), "configured"
    for path in _pyenv_executables(_pyenv_root(environ)):
        yield path, "pyenv"
    for path in _path_executables(environ.get("PATH", "")):
        yield path, "path"


def _pyenv_root(environ: Mapping[str, str]) -> str:
    root = environ.get("PYENV_ROOT")
    if root:
        return root
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".pyenv")


def _pyenv_executables(root: str) -> Iterator[str]:
    versions = os.path.join(root, "versions")
    for version in sorted(_listdir(versions)):
        bin_dir = os.path.join(versions, version, "bin")
        names = sorted(name for name in _listdir(bin_dir) if _PYENV_NAME.match(name))
        for name in names or ["python3"]:
            path = os.path.join(bin_dir, name)
            if _is_executable_file(path):
                yield path


def _path_executables(search_path: str) -> Iterator[str]:
    for directory in search_path.split(os.pathsep):
        # Relative entries would make the result depend on the cwd (and run files from it).
        # Shims (pyenv, asdf) dispatch to the *active* version and fail for inactive ones;
        # the real installs behind them are found through the pyenv root instead.
        if not os.path.isabs(directory) or os.path.basename(directory) == "shims":
            continue
        # python3.N before python3: the versioned name keeps meaning the same minor when the
        # distro repoints python3, and it is the one kept when both are the same file.
        names = sorted(
            (name for name in _listdir(directory) if _PATH_NAME.match(name)),
            key=lambda name: (name == "python3", name),
        )
        for name in names:
            path = os.path.join(directory, name)
            if _is_executable_file(path):
                yield path


def _listdir(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)
