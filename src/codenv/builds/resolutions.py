"""A short-lived cache of resolutions, shared by every env of the node.

Resolving against an index whose pages carry no cache lifetime costs a revalidation request per
project, even when nothing changed. Within a freshness window (by default the ten minutes
PyPI itself asks clients to cache its pages) the same input resolves to the same lock without
asking the index again: envs created from one set in a row get identical locks, quickly.
Upgrades and forced rebuilds always resolve again (the service says so in the build input); so
does anything with an editable.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from codenv.domain.plan import Plan


@dataclass(frozen=True)
class ResolutionCache:
    directory: Path
    ttl_seconds: float

    def _entry(self, plan: Plan, requirements: str, previous_lock: str) -> Path:
        key = hashlib.sha256(
            "\0".join((plan.hash, requirements, previous_lock)).encode()
        ).hexdigest()
        return self.directory / f"{key}.txt"

    def usable(self, plan: Plan) -> bool:
        return self.ttl_seconds > 0 and not plan.has_editables

    def get(self, plan: Plan, requirements: str, previous_lock: str) -> tuple[str, float] | None:
        """The cached lock and its age in seconds, when one is fresh."""
        if not self.usable(plan):
            return None
        entry = self._entry(plan, requirements, previous_lock)
        try:
            age = time.time() - entry.stat().st_mtime
            if age > self.ttl_seconds:
                return None
            return entry.read_text("utf-8"), age
        except OSError:
            return None

    def put(self, plan: Plan, requirements: str, previous_lock: str, lock: str) -> None:
        if not self.usable(plan):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        entry = self._entry(plan, requirements, previous_lock)
        # Unique per writer: two builds of one process may put the same entry at once.
        temporary = entry.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex}.tmp")
        temporary.write_text(lock, "utf-8")
        os.replace(temporary, entry)
