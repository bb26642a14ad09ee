"""A fake installer, shipped beside the real ones, for fast tests of everything above it.

It resolves each requirement to a version from a table (or 1.0), "installs" by recording the
lock in the revision, and makes a real but tiny venv: `bin/python` is the interpreter codenv
runs on, with a `pyvenv.cfg`, so a resources init script really runs in it and imports the
core package. Every stage can be made to fail, or to wait, through `hooks`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from codenv import core_package
from codenv.backends.base import InstalledPackage, Run
from codenv.domain.errors import BuildFailed
from codenv.domain.plan import Plan

STAGES = (
    "resolve",
    "create_venv",
    "install",
    "install_editables",
    "check",
    "installed",
)
Hook = Callable[[Run], None]

_NAME = re.compile(r"^\s*(?:-e\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)")
_RECORD = ".fake-installed.json"


def _requirement_name(line: str) -> str:
    """The distribution name of a requirement line; a local path's last part for paths."""
    text = line.strip()
    if text.startswith("-e "):
        return Path(text[3:].strip()).name
    if " @ " in text:
        text = text.split(" @ ", 1)[0]
    found = _NAME.match(text)
    return found.group(1).lower() if found else text


class FakeInstaller:
    name = "fake"
    # Its venvs load the core package from codenv's sources (see install()).
    box_read_only: tuple[Path, ...] = (Path(core_package.__file__).parent, Path(sys.base_prefix))

    def __init__(
        self,
        versions: Mapping[str, str] | None = None,
        hooks: Mapping[str, Hook] | None = None,
    ) -> None:
        self.versions = dict(versions or {})
        self.hooks: dict[str, Hook] = dict(hooks or {})
        self.check_warnings: tuple[str, ...] = ()
        self.calls: list[str] = []

    def _stage(self, stage: str, run: Run) -> None:
        self.calls.append(stage)
        run.log.write(f"[fake] {stage}")
        hook = self.hooks.get(stage)
        if hook is not None:
            hook(run)

    def resolve(self, run: Run, plan: Plan, requirements: Path, lock: Path, upgrade: bool) -> None:
        self._stage("resolve", run)
        kept = {} if upgrade or not lock.exists() else _pins(lock.read_text("utf-8"))
        lines = []
        for line in requirements.read_text("utf-8").splitlines():
            if line.strip():
                name = _requirement_name(line)
                version = kept.get(name) or self.versions.get(name, "1.0")
                lines.append(f"{name}=={version}")
        lock.write_text("".join(f"{line}\n" for line in sorted(set(lines))), "utf-8")

    def create_venv(self, run: Run, plan: Plan, target: Path) -> None:
        self._stage("create_venv", run)
        bin_dir = target / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "python").symlink_to(os.path.realpath(sys.executable))
        home = Path(sys.base_prefix) / "bin"
        (target / "pyvenv.cfg").write_text(f"home = {home}\ninclude-system-site-packages = false\n")

    def install(self, run: Run, lock: Path, python: Path) -> None:
        self._stage("install", run)
        target = python.parent.parent
        pins = _pins(lock.read_text("utf-8"))
        record = [{"name": name, "version": version} for name, version in sorted(pins.items())]
        (target / _RECORD).write_text(json.dumps(record), "utf-8")
        # The core package from codenv's own sources, so init scripts can use its helpers.
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        site = target / "lib" / version / "site-packages"
        site.mkdir(parents=True, exist_ok=True)
        (site / "codenv-core.pth").write_text(str(Path(core_package.__file__).parent) + "\n")

    def install_at(
        self, run: Run, interpreter: str, venv_options: Sequence[str], lock: Path, env_path: Path
    ) -> None:
        # Installing at a path inside a box needs the sandbox and a real installer.
        self._stage("install_at", run)
        raise BuildFailed("the fake installer cannot install an env for an image")

    def install_editables(self, run: Run, paths: Sequence[str], python: Path) -> None:
        self._stage("install_editables", run)

    def check(self, run: Run, python: Path) -> tuple[str, ...]:
        self._stage("check", run)
        return self.check_warnings

    def installed(self, run: Run, python: Path) -> list[InstalledPackage]:
        self._stage("installed", run)
        record = json.loads((python.parent.parent / _RECORD).read_text("utf-8"))
        return [InstalledPackage(item["name"], item["version"]) for item in record]

    def write_pylock(self, run: Run, interpreter: str, lock: Path, out: Path) -> None:
        self._stage("write_pylock", run)
        packages = "".join(
            f'[[packages]]\nname = "{name}"\nversion = "{version}"\n\n'
            for name, version in sorted(_pins(lock.read_text("utf-8")).items())
        )
        out.write_text(f'lock-version = "1.0"\ncreated-by = "fake"\n\n{packages}', "utf-8")


def _pins(lock: str) -> dict[str, str]:
    pins = {}
    for line in lock.splitlines():
        name, separator, version = line.strip().partition("==")
        if separator:
            pins[name] = version
    return pins
