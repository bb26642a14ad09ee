"""Start-up recovery: builds whose process died are failed, their leftovers removed, and every
env left unsettled made to agree with the database (the source of truth): its `current`
link, env vars, kernelspec and pruning (services.activation)."""

from __future__ import annotations

import functools
import logging
import shutil
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from codenv.builds.logs import BuildLog
from codenv.domain.builds import BuildStatus, check_transition
from codenv.envdirs.layout import EnvLayout
from codenv.jobs.liveness import holder_alive
from codenv.services.activation import settle_env, unsettled_envs
from codenv.services.app import Codenv
from codenv.services.views import as_utc
from codenv.storage import queries
from codenv.storage.models import BuildRow, BuildSlotRow, CodeEnvRow, utcnow

logger = logging.getLogger(__name__)
# A build handed to a detached worker has no holder until that worker starts.
UNCLAIMED_GRACE = timedelta(minutes=5)
# Export and import scratch older than this belongs to no running process.
SCRATCH_AGE = timedelta(days=1)
DIED = (
    "the process running this build stopped before it finished (killed or crashed); "
    "the active revision is unchanged"
)


def _is_orphan(build: BuildRow, now: datetime) -> bool:
    if build.holder:
        return not holder_alive(build.holder)
    created = as_utc(build.created_at) or now
    return now - created > UNCLAIMED_GRACE


def _fail_orphans(app: Codenv) -> None:
    now = datetime.now(UTC)
    with app.db.session() as session:
        for build in queries.unfinished_builds(session):
            if not _is_orphan(build, now):
                continue
            build.status = check_transition(build.status, BuildStatus.FAILED)
            build.step, build.error, build.finished_at = "failed", DIED, utcnow()
            queries.release_build_slot(session, build.id)
            env = session.get(CodeEnvRow, build.env_id) if build.env_id else None
            layout = EnvLayout.of(app.settings.envs_dir, build.env_name)
            layout.drop_staged(build.id)
            number = build.revision
            if env and number is not None and queries.revision(session, env.id, number) is None:
                layout.remove_revision(number)
            log = BuildLog(app.settings.builds_dir / f"{build.id}.log")
            log.step("failed", DIED)
            log.close()


def _release_dead_slots(app: Codenv) -> None:
    with app.db.session() as session:
        for slot in session.scalars(select(BuildSlotRow)).all():
            if not holder_alive(slot.holder):
                session.delete(slot)


def _sweep_bundle_scratch(app: Codenv, now: float) -> None:
    """Scratch of exports, imports and builds (an image build's env and layers) whose process
    died: old enough that no live process (of this home, on any host) can still be writing
    it. An import's staged files go with its build (removed when it ends, or failed above
    when its process died)."""
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
    _fail_orphans(app)
    _release_dead_slots(app)
    _sweep_bundle_scratch(app, time.time())
    for env_id in unsettled_envs(app):
        settle_env(app, env_id, functools.partial(logger.warning, "env #%s: %s", env_id))
