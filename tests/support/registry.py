"""A real container registry on loopback for tests: Debian's docker-registry (distribution 2.8),
started by the project's own service script, `scripts/registry`.

    from support.registry import start_registry

    running = start_registry(tmp_path, users={"alice": "s3cret"})  # users: htpasswd (bcrypt)
    try:
        ...  # running.host, running.url, running.endpoint("alice", "s3cret")
    finally:
        running.stop()

or `with running_registry(tmp_path) as running:`, or the `registry` fixture
(`from support.registry import registry  # noqa: F401`).

Without docker-registry (or htpasswd, when users are asked for) the test is skipped, except
under CI=true, where a missing tool is a failure (scripts/test-image-setup installs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest

from codenv.images.registry import RegistryEndpoint

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "registry"
_TOOLS = {"docker-registry": "docker-registry", "htpasswd": "apache2-utils"}


def _missing(tool: str) -> str | None:
    if shutil.which(tool) is None:
        return f"{tool} is not installed (Debian's {_TOOLS[tool]}; scripts/test-image-setup)"
    return None


def registry_available(*, users: bool = False) -> str | None:
    """Why the registry tests cannot run here (a skip reason), or None when they can."""
    return _missing("docker-registry") or (_missing("htpasswd") if users else None)


def require_registry(*, users: bool = False) -> None:
    """Skip the calling test (outside CI) or fail it (CI=true) when the registry cannot run."""
    reason = registry_available(users=users)
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: the registry tests must run in CI", pytrace=False)
    pytest.skip(reason)


@dataclass
class RunningRegistry:
    directory: Path  # config.yml, registry.log, registry.pid, data/
    port: int

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def endpoint(self, username: str = "", password: str = "") -> RegistryEndpoint:
        return RegistryEndpoint(self.host, insecure=True, username=username, password=password)

    def storage_bytes(self) -> int:
        """What the registry really stores: the sizes of the files under its data directory."""
        total = 0
        for root, _dirs, files in os.walk(self.data_dir):
            total += sum(os.lstat(os.path.join(root, name)).st_size for name in files)
        return total

    def blob_file(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes (tests tamper with it)."""
        algorithm, _, hexdigest = digest.partition(":")
        blobs = self.data_dir / "docker" / "registry" / "v2" / "blobs"
        return blobs / algorithm / hexdigest[:2] / hexdigest / "data"

    def garbage_collect(self) -> None:
        """Delete the blobs and untagged manifests no tag refers to (while idle)."""
        _script("gc", str(self.directory))

    def log(self) -> str:
        path = self.directory / "registry.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        _script("stop", str(self.directory))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _script(*args: str) -> None:
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/registry {' '.join(args)} failed:\n{result.stderr}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    """bcrypt entries made by `htpasswd -inB` (the password read from stdin, not argv)."""
    lines = []
    for user, password in users.items():
        result = subprocess.run(
            ["htpasswd", "-inB", user],
            input=password,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        lines.append(result.stdout.strip())
    path.write_text("\n".join(lines) + "\n")
    return path


def start_registry(tmp_dir: Path, *, users: dict[str, str] | None = None) -> RunningRegistry:
    """A registry on a free loopback port, files under tmp_dir/registry; with users, every
    request needs one of them (Basic auth from an htpasswd file). Call .stop() when done."""
    require_registry(users=bool(users))
    directory = tmp_dir / "registry"
    directory.mkdir(parents=True, exist_ok=True)
    extra = [str(_htpasswd_file(tmp_dir / "registry.htpasswd", users))] if users else []
    failure: Exception | None = None
    for _attempt in range(3):  # another process may take the free port before the registry
        port = _free_port()
        try:
            _script("start", str(directory), str(port), *extra)
        except RuntimeError as error:
            failure = error
            continue
        return RunningRegistry(directory, port)
    raise RuntimeError(f"the test registry did not start: {failure}")


@contextmanager
def running_registry(
    tmp_dir: Path, *, users: dict[str, str] | None = None
) -> Iterator[RunningRegistry]:
    """start_registry for a `with` block (a module- or session-scoped fixture, a benchmark)."""
    registry = start_registry(tmp_dir, users=users)
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    """An open registry (no users) of the test's own."""
    with running_registry(tmp_path) as running:
        yield running
