"""The application context every service call receives: settings, database, build tools, queue."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from codenv.domain.catalog import Catalog, load_catalog
from codenv.jobs.celery_queue import CeleryQueue
from codenv.jobs.queue import DetachedProcessQueue, InlineQueue, JobQueue, LocalWorkerQueue
from codenv.services.read_cache import ReadCache
from codenv.settings import Settings
from codenv.storage.db import Database

if TYPE_CHECKING:
    # The installers and the build executor load with the first build (or the first look at
    # an env's live packages): every command opens a Codenv, few of them build.
    from codenv.backends.base import EditableInstaller, Installer
    from codenv.builds.executor import BuildTools

QueueKind = Literal["threads", "inline", "detached"]
logger = logging.getLogger(__name__)


@dataclass
class Codenv:
    settings: Settings
    db: Database
    make_tools: Callable[[], BuildTools] = field(repr=False)
    queue: JobQueue = field(init=False)
    # Pages of envs and builds kept while the data is unchanged (services/read_cache.py).
    reads: ReadCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.reads = ReadCache(self.db.data_version)

    # The catalog and the tools are made on first use: most commands need neither. Two
    # threads may both make one; they are plain values, so either serves.
    @cached_property
    def catalog(self) -> Catalog:
        path = self.settings.catalog_file
        text = path.read_text("utf-8") if path.exists() else None
        return load_catalog(text, source=str(path))

    @cached_property
    def tools(self) -> BuildTools:
        return self.make_tools()

    def close(self) -> None:
        if isinstance(self.queue, LocalWorkerQueue):
            self.queue.shutdown()
        elif isinstance(self.queue, CeleryQueue):
            self.queue.close()
        self.db.dispose()


def _make_queue(app: Codenv, kind: QueueKind, runner: Callable[[str], None]) -> JobQueue:
    if kind == "inline":
        return InlineQueue(runner)
    # With a broker, builds go to `codenv worker` processes, whether the caller waits or not.
    if app.settings.broker_url:
        return CeleryQueue(app.settings)
    if kind == "detached":
        return DetachedProcessQueue(app.settings.home)
    return LocalWorkerQueue(runner, app.settings.max_parallel_builds)


def build_tools(
    settings: Settings,
    installer: Installer | None = None,
    editables: EditableInstaller | None = None,
) -> BuildTools:
    """uv and pip by default; tests hand in the fake installer for both."""
    from codenv.backends.pip import PipInstaller
    from codenv.backends.uv import UvInstaller
    from codenv.builds.executor import BuildTools
    from codenv.builds.resolutions import ResolutionCache

    return BuildTools(
        installer or UvInstaller(settings.uv_cache_dir),
        editables or PipInstaller(),
        ResolutionCache(settings.resolutions_dir, settings.resolution_ttl_seconds),
    )


def secure_home(home: Path) -> None:
    """Make the home private to the codenv user (0700, its database and config 0600), and
    everything codenv writes from now on private too: it holds index passwords, init
    scripts, env-var secrets and the session key. Looser modes found are tightened, loudly."""
    os.umask(0o077)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A home being set up (no database yet) is made private quietly; an existing one, loudly.
    report = logger.warning if (home / "codenv.db").exists() else logger.debug
    private = [(home, 0o700), (home / "config", 0o700), (home / "codenv.db", 0o600)]
    config = home / "config"
    if config.is_dir():
        private += [(path, 0o600) for path in config.iterdir() if path.is_file()]
    for path, mode in private:
        try:
            current = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if current & 0o077:
            report("%s was readable by others (%o): made private (%o)", path, current, mode)
            path.chmod(mode)


def open_codenv(
    settings: Settings,
    queue: QueueKind = "threads",
    installer: Installer | None = None,
    editables: EditableInstaller | None = None,
) -> Codenv:
    """Prepare the home, migrate the schema and recover builds whose process died.

    What only builds use (installers, executor, sandbox) loads with the first build."""
    from codenv.services.recovery import recover

    secure_home(settings.home)
    for directory in (settings.envs_dir, settings.builds_dir, settings.uv_cache_dir):
        directory.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    db.migrate()
    app = Codenv(settings, db, lambda: build_tools(settings, installer, editables))
    app.queue = _make_queue(app, queue, lambda build_id: _run_build(app, build_id))
    recover(app)
    return app


def _run_build(app: Codenv, build_id: str) -> None:
    from codenv.services.build_jobs import run_build

    run_build(app, build_id)
