"""Start-up recovery removes what killed exports and imports left, and only that."""

from __future__ import annotations

import os
import time
from pathlib import Path

from codenv.services.app import Codenv
from codenv.services.recovery import SCRATCH_AGE, recover

DAY_AND_A_BIT = SCRATCH_AGE.total_seconds() + 60


def _made(path: Path, age: float) -> Path:
    path.mkdir(parents=True)
    (path / "part").write_bytes(b"x")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_old_scratch_of_dead_exports_and_imports_is_swept(app: Codenv) -> None:
    builds, imports = app.settings.builds_dir, app.settings.imports_dir
    old = [
        _made(builds / "export-dead", DAY_AND_A_BIT),
        _made(builds / "download-dead", DAY_AND_A_BIT),
        _made(imports / "unpack-dead", DAY_AND_A_BIT),
        _made(imports / "0123456789abcdef0123456789abcdef", DAY_AND_A_BIT),  # no such build
    ]
    fresh = [
        _made(builds / "export-running", 60),
        _made(imports / "unpack-running", 60),
    ]
    recover(app)
    assert [path.exists() for path in old] == [False] * len(old)
    assert [path.exists() for path in fresh] == [True] * len(fresh)
