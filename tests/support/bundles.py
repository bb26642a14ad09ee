"""Reading and rewriting bundle files in tests (tampering, odd manifests)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def members(bundle: Path) -> dict[str, bytes]:
    """Every regular member of a bundle, by name."""
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def rewritten(bundle: Path, target: Path, change: dict[str, bytes]) -> Path:
    """A copy of `bundle` with some members' bytes replaced (the manifest untouched unless
    it is one of them)."""
    found = members(bundle)
    found.update(change)
    with tarfile.open(target, "w") as tar:
        for name, data in found.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target
