"""Run a candidate executable once to learn which Python it is, and remember the answer."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codenv.domain.errors import UnsupportedInterpreter
from codenv.domain.pythons import Interpreter, refusal_reason

PROBE_TIMEOUT = 10.0
_CACHE_FORMAT = 1

# Must stay valid on Python 2.7: probing an old interpreter is how we tell the user *why* it is
# refused instead of failing with a SyntaxError. One JSON line on stdout, nothing else.
_PROBE_SCRIPT = """
import json, platform, sys, sysconfig
try:
    impl = sys.implementation.name
except AttributeError:
    impl = platform.python_implementation().lower()
v = sys.version_info
version = "%d.%d.%d" % tuple(v[:3])
if v[3] != "final":
    version += {"alpha": "a", "beta": "b", "candidate": "rc"}.get(v[3], v[3]) + str(v[4])
sys.stdout.write(json.dumps({"implementation": impl, "version": version,
                             "version_info": list(v[:3]),
                             "include": sysconfig.get_path("include") or ""}) + "\\n")
"""


class ProbeError(Exception):
    """A candidate is not a usable Python; the message is the reason, phrased for a user."""


@dataclass(frozen=True)
class ProbeResult:
    """What an interpreter said about itself; independent of the path it was reached by."""

    implementation: str
    version: str
    version_info: tuple[int, ...]
    include: str

    @classmethod
    def from_json(cls, data: Any) -> ProbeResult:
        """Validate untrusted JSON (probe output or cache entry); ValueError when malformed."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        implementation, version = data.get("implementation"), data.get("version")
        info, include = data.get("version_info"), data.get("include")
        if not (isinstance(implementation, str) and isinstance(version, str)):
            raise ValueError("implementation and version must be strings")
        if not isinstance(include, str) or not isinstance(info, list) or len(info) < 2:
            raise ValueError("include must be a string and version_info a list")
        if not all(isinstance(part, int) for part in info):
            raise ValueError("version_info must hold integers")
        return cls(implementation, version, tuple(info), include)

    def to_json(self) -> dict[str, Any]:
        return {
            "implementation": self.implementation,
            "version": self.version,
            "version_info": list(self.version_info),
            "include": self.include,
        }

    def has_headers(self) -> bool:
        # Checked live rather than cached: installing python3.X-dev adds the headers without
        # touching the interpreter binary, so the cache stamp would not notice.
        return bool(self.include) and os.path.isfile(os.path.join(self.include, "Python.h"))

    def interpreter(self, path: str, source: str) -> Interpreter:
        """The domain object for this result, or ProbeError when codenv refuses it."""
        reason = refusal_reason(self.implementation, self.version_info)
        if reason is not None:
            raise ProbeError(reason)
        return Interpreter(
            path=path,
            version=self.version,
            implementation=self.implementation,
            source=source,
            has_headers=self.has_headers(),
        )


def probe(path: str, source: str) -> Interpreter:
    """Run `path` and describe it; UnsupportedInterpreter (naming the path) when unusable.

    The returned path is absolute but keeps symlinks: a pyenv or distro path stays meaningful
    to the user and survives the target being replaced by a patch release.
    """
    absolute = os.path.abspath(path)
    try:
        return run_probe(absolute).interpreter(absolute, source)
    except ProbeError as exc:
        raise UnsupportedInterpreter(f"cannot use {absolute}: {exc}") from None


def run_probe(path: str) -> ProbeResult:
    """Execute the probe script with `path`; ProbeError explains any failure."""
    _check_runnable(path)
    try:
        done = subprocess.run(
            # -E -s: PYTHONPATH, PYTHONHOME or a user site must not change what we learn.
            [path, "-E", "-s", "-c", _PROBE_SCRIPT],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProbeError(f"it did not answer within {PROBE_TIMEOUT:g} s") from None
    except OSError as exc:
        raise ProbeError(f"it cannot be run ({exc.strerror or exc})") from None
    if done.returncode != 0:
        detail = _last_line(done.stderr) or _last_line(done.stdout)
        suffix = f": {detail[:200]}" if detail else ""
        raise ProbeError(f"it is not a Python interpreter (exit status {done.returncode}{suffix})")
    return _parse_output(done.stdout)


def _check_runnable(path: str) -> None:
    if not os.path.lexists(path):
        raise ProbeError("it does not exist")
    if not os.path.exists(path):
        raise ProbeError("it is a broken symbolic link")
    if os.path.isdir(path):
        raise ProbeError("it is a directory, not an executable")
    if not os.access(path, os.X_OK):
        raise ProbeError("it is not executable")


def _parse_output(stdout: str) -> ProbeResult:
    line = _last_line(stdout)
    try:
        return ProbeResult.from_json(json.loads(line))
    except ValueError:
        raise ProbeError(
            f"it is not a Python interpreter (unexpected output: {line[:200]!r})"
        ) from None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class ProbeCache:
    """Probe results keyed by an executable's realpath, trusted while its mtime and size hold.

    Discovery runs at every CLI command; this spares ~30 ms per interpreter. The file is an
    optimisation only: unreadable or corrupt means empty, and a failed write is ignored.
    """

    def __init__(self, file: Path | None) -> None:
        self._file = file
        self._old = _read_entries(file) if file is not None else {}
        self._new: dict[str, dict[str, Any]] = {}
        self._stamps: dict[str, tuple[int, int]] = {}

    def lookup(self, realpath: str) -> ProbeResult | None:
        """The cached result when still valid. Stats now so a later store() uses this stamp."""
        try:
            info = os.stat(realpath)
        except OSError:
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        self._stamps[realpath] = stamp
        entry = self._old.get(realpath)
        if not isinstance(entry, dict) or (entry.get("mtime_ns"), entry.get("size")) != stamp:
            return None
        try:
            result = ProbeResult.from_json(entry.get("result"))
        except ValueError:
            return None
        self._new[realpath] = entry
        return result

    def store(self, realpath: str, result: ProbeResult) -> None:
        # The stamp comes from before the probe ran, so a binary replaced meanwhile re-probes.
        stamp = self._stamps.get(realpath)
        if stamp is not None:
            entry = {"mtime_ns": stamp[0], "size": stamp[1], "result": result.to_json()}
            self._new[realpath] = entry

    def save(self) -> None:
        """Write only what this run saw (drops uninstalled interpreters), atomically."""
        if self._file is None or self._new == self._old:
            return
        payload = json.dumps({"format": _CACHE_FORMAT, "entries": self._new}, indent=1)
        _write_atomically(self._file, payload)


def _read_entries(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _write_atomically(file: Path, text: str) -> None:
    # Several CLI processes may discover at once: each writes its own temp file and the
    # rename makes the last complete one win; a reader never sees a half-written file.
    tmp_name = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, file)
    except OSError:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
