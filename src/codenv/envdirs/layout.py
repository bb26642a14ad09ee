"""Where an env lives on disk, and the atomic switch of its `current` link."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

STAGING_PREFIX = ".staged-"


@dataclass(frozen=True)
class EnvLayout:
    root: Path

    @classmethod
    def of(cls, envs_dir: Path, name: str) -> EnvLayout:
        return cls(envs_dir / name)

    @property
    def revisions_dir(self) -> Path:
        return self.root / "revisions"

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def resources_dir(self) -> Path:
        return self.root / "resources"

    @property
    def env_vars_file(self) -> Path:
        """The resources env vars (`resources_env.json`), beside the resources dir."""
        return self.root / "resources_env.json"

    def staging_dir(self, build_id: str) -> Path:
        """A build's own directory for the env vars its init script writes, until the build is
        committed. A directory, not a file: the script replaces the file by a rename, which a
        sandbox can do only inside a directory it was given."""
        return self.root / f"{STAGING_PREFIX}{build_id}"

    def staged_env_vars_file(self, build_id: str) -> Path:
        return self.staging_dir(build_id) / "resources_env.json"

    def drop_staged(self, build_id: str) -> None:
        shutil.rmtree(self.staging_dir(build_id), ignore_errors=True)

    def revision(self, number: int) -> Path:
        return self.revisions_dir / str(number)

    def python(self, number: int | None = None) -> Path:
        base = self.current if number is None else self.revision(number)
        return base / "bin" / "python"

    def current_number(self) -> int | None:
        try:
            return int(Path(os.readlink(self.current)).name)
        except (OSError, ValueError):
            return None

    def switch_current(self, number: int) -> None:
        """Point `current` at revision `number` in one rename, so a reader sees old or new."""
        temporary = self.root / f".current-{uuid.uuid4().hex}"
        os.symlink(Path("revisions") / str(number), temporary)
        os.replace(temporary, self.current)

    def remove_revision(self, number: int) -> None:
        shutil.rmtree(self.revision(number), ignore_errors=True)


def disk_usage(path: Path) -> int:
    """Bytes of the files under `path`, each hard-linked inode counted once (as `du` does)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            key = (stat.st_dev, stat.st_ino)
            if key not in seen:
                seen.add(key)
                total += stat.st_blocks * 512
    return total
