"""Start-up recovery, in every process that opens the home: claimed builds whose lease expired
or whose process here died are failed and their leftovers here removed (services.leases),
old scratch swept, and every env left unsettled made to agree with the database (the source
of truth): its `current` link, env vars, kernelspec and pruning (services.activation).
Queued builds are left queued: they never expire."""

from __future__ import annotations

import functools
import logging
import shutil
import time
from contextlib import suppress
from datetime import timedelta

from codenv.domain.builds import BuildStatus
from codenv.services.activation import settle_env, unsettled_envs
from codenv.services.app import Codenv
from codenv.services.leases import reap_expired
from codenv.storage.models import BuildRow

logger = logging.getLogger(__name__)
# Export and import scratch older than this belongs to no running process.
SCRATCH_AGE = timedelta(days=1)


def _sweep_bundle_scratch(app: Codenv, now: float) -> None:
    """Scratch of exports, imports and builds (an image build's env and layers) whose process
    died: old enough that no live process (of this home, on any host) can still be writing
    it. An import's staged files go with its build (removed when it ends, or failed by the
    reaper when its process died)."""
    old = now - SCRATCH_AGE.total_seconds()
    scratch = [
        *app.settings.builds_dir.glob("export-*"),
        *app.settings.builds_dir.glob("download-*"),
        *app.settings.imports_dir.glob("unpack-*"),
    ]
    with app.db.session() as session:
        work_dirs = (p for p in app.settings.builds_dir.glob("[0-9a-f]*") if p.is_dir())
        for staged in (*app.settings.imports_dir.glob("[0-9a-f]*"), *work_dirs):
            build = session.get(BuildRow, staged.name)
            if build is None or BuildStatus(build.status).finished:
                scratch.append(staged)
    for path in scratch:
        with suppress(OSError):
            if path.lstat().st_mtime < old:
                shutil.rmtree(path, ignore_errors=True)


def recover(app: Codenv) -> None:
    reap_expired(app)
    _sweep_bundle_scratch(app, time.time())
    for env_id in unsettled_envs(app):
        settle_env(app, env_id, functools.partial(logger.warning, "env #%s: %s", env_id))
