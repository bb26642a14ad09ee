"""Hashed requirements locks (what `uv pip compile --generate-hashes` writes), read and written.

A lock is a list of entries: one requirement pinned to a version (or a direct URL) and the
sha256 digests an install accepts for it. Comments (`# via …`) are for people: they carry
node-local paths (the build's directory) and are not part of what a lock means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name

from codenv.domain.errors import InvalidInput
from codenv.domain.requirements import logical_lines

_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
_DIRECT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])? @ (\S+)")


@dataclass(frozen=True)
class LockEntry:
    requirement: str  # the line as written: `numpy==1.26.4` or `name @ url`, markers included
    name: str  # normalized
    version: str | None  # None for a direct URL
    url: str | None
    hashes: tuple[str, ...] = field(default=())

    def render(self) -> str:
        parts = [self.requirement, *(f"--hash=sha256:{digest}" for digest in self.hashes)]
        return " \\\n    ".join(parts) + "\n"


def _entry(line: str) -> LockEntry:
    requirement = _HASH.sub("", line).strip()
    hashes = tuple(_HASH.findall(line))
    if pinned := _PIN.match(requirement):
        return LockEntry(requirement, canonicalize_name(pinned[1]), pinned[3], None, hashes)
    if direct := _DIRECT.match(requirement):
        return LockEntry(requirement, canonicalize_name(direct[1]), None, direct[3], hashes)
    shown = line[:200]
    raise InvalidInput(f"lock line is neither pinned nor a direct URL: {shown!r}", field="lock")


def parse_lock(text: str) -> list[LockEntry]:
    """The entries of a hashed lock; options lines (`--index-url …`) are not entries."""
    return [_entry(line) for _, line in logical_lines(text) if not line.startswith("-")]


def render_lock(entries: list[LockEntry]) -> str:
    return "".join(entry.render() for entry in entries)


def lock_key(text: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """What makes two locks the same lock: names, versions (or URLs) and digests, in order of
    name. Comments, line wrapping and the order uv printed them in do not count."""
    return tuple(
        sorted(
            (entry.name, entry.version or entry.url or "", tuple(sorted(entry.hashes)))
            for entry in parse_lock(text)
        )
    )
