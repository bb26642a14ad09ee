"""What one write may add to a resources dir: the env's quota, and a zip's unpacked size and
member count (zip bombs). Each refusal names the limit and the node setting that raises it.

A zip is checked before it is opened (its members counted by their central-directory
signature, so a directory of millions of entries is never parsed into memory), then by the
sizes its members declare, before anything is written; the unpacking counts again, in case
the declared sizes lie.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codenv.domain.errors import InvalidInput
from codenv.domain.limits import (
    DEFAULT_MAX_UNZIP_BYTES,
    DEFAULT_MAX_ZIP_MEMBERS,
    MIB,
    size_text,
)
from codenv.resources.confine import tree_size
from codenv.settings import LIMIT_SETTINGS

_CENTRAL_ENTRY = b"PK\x01\x02"  # what starts each member's entry in a zip's directory


def _variable(setting: str) -> str:
    return LIMIT_SETTINGS[setting][0]


@dataclass(frozen=True)
class WriteLimits:
    """Sizes in bytes; a quota of 0 is no quota."""

    unzip_bytes: int = DEFAULT_MAX_UNZIP_BYTES
    zip_members: int = DEFAULT_MAX_ZIP_MEMBERS
    quota: int = 0


DEFAULT_LIMITS = WriteLimits()


@dataclass(frozen=True)
class Budget:
    """How many bytes a write may add, and what to say when it would add more."""

    size: int
    field: str
    # "{size}" (what the write adds) is filled in by `refusal`.
    reason: str

    def refusal(self, adding: int | None = None) -> InvalidInput:
        what = f"more than {size_text(self.size)}" if adding is None else size_text(adding)
        return InvalidInput(self.reason.format(size=what), field=self.field)

    def check(self, adding: int) -> None:
        if adding > self.size:
            raise self.refusal(adding)


def _used(root: Path) -> int:
    if not root.is_dir():
        return 0
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return tree_size(fd)
    finally:
        os.close(fd)


def _quota_budget(root: Path, limits: WriteLimits, field: str, what: str) -> Budget | None:
    if not limits.quota:
        return None
    room = max(0, limits.quota - _used(root))
    reason = (
        f"{what} {{size}}, more than the {size_text(room)} left of this env's resources "
        f"quota of {size_text(limits.quota)} ({_variable('resources_quota_bytes')})"
    )
    return Budget(room, field, reason)


def file_budget(root: Path, limits: WriteLimits) -> Budget | None:
    """What a file written into `root` may weigh (None: anything)."""
    return _quota_budget(root, limits, "file", "the file has")


def zip_budget(root: Path, limits: WriteLimits) -> Budget:
    """What a zip unpacked into `root` may add: the smaller of its limit and the quota's room."""
    unzip = Budget(
        limits.unzip_bytes,
        "archive",
        f"the archive unpacks to {{size}}; the limit is {size_text(limits.unzip_bytes)} "
        f"({_variable('max_unzip_bytes')})",
    )
    quota = _quota_budget(root, limits, "archive", "the archive unpacks to")
    return quota if quota is not None and quota.size < unzip.size else unzip


def check_member_count(archive: Path, limit: int) -> None:
    """Refuse an archive with more than `limit` members, counting the central-directory
    signatures (a bound from above: a member name containing one only counts twice)."""
    found, tail = 0, b""
    with archive.open("rb") as stream:
        while chunk := stream.read(MIB):
            window = tail + chunk
            found += window.count(_CENTRAL_ENTRY)
            if found > limit:
                raise InvalidInput(
                    f"the archive has more than {limit} members ({_variable('max_zip_members')})",
                    field="archive",
                )
            # Keep the last 3 bytes: a signature split between two chunks is counted once.
            tail = window[-(len(_CENTRAL_ENTRY) - 1) :]
