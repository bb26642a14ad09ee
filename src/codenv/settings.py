"""One typed settings object, built at the edge (CLI, server) and passed in."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from codenv.domain.errors import InvalidInput
from codenv.domain.limits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_BUNDLE_BYTES,
    DEFAULT_MAX_UNZIP_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MAX_ZIP_MEMBERS,
    DEFAULT_RESOURCES_QUOTA_BYTES,
)

DEFAULT_INDEX_URL = "https://pypi.org/simple"
DEFAULT_LEASE_SECONDS = 30
DEFAULT_BUILD_QUEUE = "codenv-builds"
# The size settings: field → (environment variable, default). Every one is named in the
# errors that apply it, so that a refused user knows what an administrator can raise.
LIMIT_SETTINGS = {
    "max_body_bytes": ("CODENV_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
    "max_upload_bytes": ("CODENV_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
    "max_unzip_bytes": ("CODENV_MAX_UNZIP_BYTES", DEFAULT_MAX_UNZIP_BYTES),
    "max_zip_members": ("CODENV_MAX_ZIP_MEMBERS", DEFAULT_MAX_ZIP_MEMBERS),
    "max_bundle_bytes": ("CODENV_MAX_BUNDLE_BYTES", DEFAULT_MAX_BUNDLE_BYTES),
    "resources_quota_bytes": ("CODENV_RESOURCES_QUOTA_BYTES", DEFAULT_RESOURCES_QUOTA_BYTES),
}


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    index_url: str = DEFAULT_INDEX_URL
    retention: int = 3
    max_parallel_builds: int = 2
    build_timeout_seconds: int = 3600
    resolution_ttl_seconds: int = 600
    configured_pythons: tuple[str, ...] = ()
    node_type: str = "design"
    # Whether envs get pip, setuptools and wheel when their spec does not say.
    seed_packages: bool = True
    # The largest request body the server reads, but for uploads (JSON, forms).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # The largest file (or form) the server accepts in one upload, API and console alike.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # What one zip may unpack to, and how many members it may have.
    max_unzip_bytes: int = DEFAULT_MAX_UNZIP_BYTES
    max_zip_members: int = DEFAULT_MAX_ZIP_MEMBERS
    # The largest bundle file an import reads (members count against max_zip_members).
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES
    # The most one env's resources dir may hold after an upload; 0: no quota.
    resources_quota_bytes: int = DEFAULT_RESOURCES_QUOTA_BYTES
    # How long a worker's claim on a build lasts unless its heartbeat renews it.
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    # The broker of the build queue (Celery); None: builds run in the server's own threads.
    broker_url: str | None = None
    # The broker queue builds are sent to (and `codenv worker` reads by default).
    build_queue: str = DEFAULT_BUILD_QUEUE
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def envs_dir(self) -> Path:
        return self.home / "envs"

    @property
    def builds_dir(self) -> Path:
        return self.home / "builds"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def uv_cache_dir(self) -> Path:
        return self.cache_dir / "uv"

    @property
    def resolutions_dir(self) -> Path:
        return self.cache_dir / "resolutions"

    @property
    def pip_cache_dir(self) -> Path:
        """pip's download cache: exporting bundles with wheels (uv has no download)."""
        return self.cache_dir / "pip"

    @property
    def bundle_wheels_dir(self) -> Path:
        """The wheels imported bundles carried, one flat folder: a stable path is what lets
        uv's cache know a wheel again at the next import (no unpacking twice)."""
        return self.cache_dir / "wheels"

    @property
    def imports_dir(self) -> Path:
        """Bundles being imported, one directory per import build, removed when it ends."""
        return self.home / "imports"

    @property
    def kernels_dir(self) -> Path:
        return self.home / "kernels"

    @property
    def wheels_dir(self) -> Path:
        return self.home / "wheels"

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "server.json"

    @property
    def catalog_file(self) -> Path:
        """The node's own package sets, added to (or replacing) the shipped catalog."""
        return self.home / "config" / "package_sets.json"


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("codenv", appauthor=False))


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot read {path}: {error}", field="config") from error
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path} must hold a JSON object", field="config")
    return raw


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise InvalidInput(f"{name} must be a whole number of 0 or more, got {value!r}", field=name)
    return number


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"{name} must be true or false, got {value!r}", field=name)


def load_settings(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from (highest first) arguments, CODENV_* variables, config/server.json."""
    env = os.environ if environ is None else environ
    chosen = home or Path(env.get("CODENV_HOME") or default_home())
    chosen = chosen.expanduser().absolute()
    config = read_config_file(chosen / "config" / "server.json")
    code_envs = config.get("codeEnvsSettings", {})
    database_url = env.get("CODENV_DATABASE_URL") or config.get("databaseUrl")
    return Settings(
        home=chosen,
        database_url=database_url or f"sqlite:///{chosen / 'codenv.db'}",
        index_url=env.get("CODENV_INDEX_URL") or code_envs.get("indexUrl") or DEFAULT_INDEX_URL,
        retention=_positive_int(
            env.get("CODENV_RETENTION", code_envs.get("revisionRetention", 3)), "retention"
        ),
        max_parallel_builds=max(
            1, _positive_int(env.get("CODENV_MAX_PARALLEL_BUILDS", 2), "max_parallel_builds")
        ),
        build_timeout_seconds=max(
            1, _positive_int(env.get("CODENV_BUILD_TIMEOUT", 3600), "build_timeout_seconds")
        ),
        resolution_ttl_seconds=_positive_int(
            env.get("CODENV_RESOLUTION_TTL", code_envs.get("resolutionTtlSeconds", 600)),
            "resolution_ttl_seconds",
        ),
        configured_pythons=tuple(code_envs.get("pythonInterpreters", ())),
        node_type=config.get("nodeType", "design"),
        seed_packages=_flag(
            env.get("CODENV_SEED_PACKAGES", code_envs.get("seedPackages", True)), "seed_packages"
        ),
        lease_seconds=max(
            3,
            _positive_int(env.get("CODENV_LEASE_SECONDS", DEFAULT_LEASE_SECONDS), "lease_seconds"),
        ),
        broker_url=env.get("CODENV_BROKER_URL") or None,
        build_queue=env.get("CODENV_BUILD_QUEUE") or DEFAULT_BUILD_QUEUE,
        **_limits(env),
    )


def _limits(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        name: _positive_int(env.get(variable, default), variable)
        for name, (variable, default) in LIMIT_SETTINGS.items()
    }
