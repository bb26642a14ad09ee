"""Builds: request an update, run it as a job (one per env at a time), read its log."""

from __future__ import annotations

import time
import traceback
import uuid
from pathlib import Path

from codenv.builds.executor import BuildJob, BuildOutcome, execute
from codenv.builds.layout import EnvLayout
from codenv.builds.logs import BuildLog
from codenv.domain.errors import CodenvError, NotFound
from codenv.domain.plan import Plan
from codenv.domain.spec import EnvSpec
from codenv.jobs.liveness import holder_alive, holder_token
from codenv.jobs.queue import DetachedProcessQueue
from codenv.services.actor import Actor, may_use, require_update
from codenv.services.app import Codenv
from codenv.services.plans import check_spec
from codenv.services.revisions import prune_revisions
from codenv.services.views import BuildInfo, UpdateResult
from codenv.storage import queries
from codenv.storage.models import BuildRow, CodeEnvRow, RevisionRow, utcnow

LOCK_POLL_SECONDS = 0.25


def log_path(app: Codenv, build_id: str) -> Path:
    return app.settings.builds_dir / f"{build_id}.log"


def enqueue_build(
    app: Codenv,
    actor: Actor,
    env_id: int,
    env_name: str,
    *,
    upgrade_all: bool = False,
    rebuild: bool = False,
) -> str:
    build_id = uuid.uuid4().hex
    # A detached worker claims the build itself; until then no process is its holder.
    holder = "" if isinstance(app.queue, DetachedProcessQueue) else holder_token()
    with app.db.session() as session:
        session.add(
            BuildRow(
                id=build_id,
                env_id=env_id,
                env_name=env_name,
                status="queued",
                upgrade_all=upgrade_all,
                rebuild=rebuild,
                requested_by=actor.name,
                holder=holder,
            )
        )
    app.queue.submit(build_id)
    return build_id


def request_update(
    app: Codenv, actor: Actor, name: str, *, upgrade_all: bool = False, rebuild: bool = False
) -> UpdateResult:
    """Update: at once "already up to date" when the plan equals the active revision's."""
    with app.db.session() as session:
        env = queries.require_env(session, name)
        require_update(actor, env)
        spec = EnvSpec.from_dict(env.spec)
        active = queries.revision(session, env.id, env.active_revision or 0)
        env_id, env_name = env.id, env.name
    checked = check_spec(app, spec)
    if active and active.plan_hash == checked.plan.hash and not (upgrade_all or rebuild):
        message = f"already up to date (revision {active.number})"
        return UpdateResult(env_name, None, True, message)
    build_id = enqueue_build(app, actor, env_id, env_name, upgrade_all=upgrade_all, rebuild=rebuild)
    return UpdateResult(env_name, build_id, False, f"build {build_id} queued")


def get_build(app: Codenv, actor: Actor, build_id: str) -> BuildInfo:
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        env = session.get(CodeEnvRow, row.env_id) if row and row.env_id else None
        if row is None or (env is not None and not may_use(actor, env)):
            raise NotFound(f"no build {build_id!r}", field="build")
        return BuildInfo.of(row)


def list_builds(app: Codenv, actor: Actor, name: str) -> list[BuildInfo]:
    with app.db.session() as session:
        env = queries.require_env(session, name)
        if not may_use(actor, env):
            raise NotFound(f"no code env named {name!r}", field="name")
        return [BuildInfo.of(row) for row in queries.builds_of(session, env.id)]


def _claim(app: Codenv, build_id: str) -> BuildRow | None:
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        if row is None or row.status != "queued" or row.env_id is None:
            return None
        row.holder = holder_token()
        return row


def _update_build(app: Codenv, build_id: str, **values: object) -> None:
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        if row is not None:
            for key, value in values.items():
                setattr(row, key, value)


def _wait_for_env_lock(app: Codenv, build: BuildRow, log: BuildLog) -> None:
    assert build.env_id is not None
    announced = False
    while not queries.try_lock_env(app.db, build.env_id, build.id, holder_token()):
        with app.db.session() as session:
            lock = queries.env_lock(session, build.env_id)
            if lock is not None and not holder_alive(lock.holder):
                session.delete(lock)
                continue
        if not announced:
            log.step("waiting", "another build of this env is running")
            announced = True
        time.sleep(LOCK_POLL_SECONDS)


def run_build(app: Codenv, build_id: str) -> None:
    """The build job. Records its own outcome; never raises for a build that failed."""
    build = _claim(app, build_id)
    if build is None:
        return
    log = BuildLog(log_path(app, build_id), lambda step: _update_build(app, build_id, step=step))
    try:
        _wait_for_env_lock(app, build, log)
        _update_build(app, build_id, status="running", started_at=utcnow())
        _build_revision(app, build, log)
    except CodenvError as error:
        _fail(app, build_id, log, error.message)
    except Exception as error:
        log.write(traceback.format_exc())
        _fail(app, build_id, log, f"internal error: {error!r}")
    finally:
        with app.db.session() as session:
            queries.release_env_lock(session, build_id)
        log.close()


def _fail(app: Codenv, build_id: str, log: BuildLog, message: str) -> None:
    log.step("failed", "the active revision is unchanged")
    log.write(message)
    _update_build(
        app, build_id, status="failed", step="failed", error=message, finished_at=utcnow()
    )


def _build_revision(app: Codenv, build: BuildRow, log: BuildLog) -> None:
    with app.db.session() as session:
        env = session.get(CodeEnvRow, build.env_id)
        if env is None:
            raise NotFound(f"code env {build.env_name!r} was deleted", field="name")
        active = queries.revision(session, env.id, env.active_revision or 0)
        number = queries.next_revision_number(session, env.id)
        spec, env_name = EnvSpec.from_dict(env.spec), env.name
        previous_lock = active.lock if active else None
    log.step("planning", f"Python {spec.python}, revision {number}")
    checked = check_spec(app, spec)
    if (
        active
        and active.plan_hash == checked.plan.hash
        and not (build.upgrade_all or build.rebuild)
    ):
        log.step("done", f"already up to date (revision {active.number})")
        _update_build(
            app,
            build.id,
            status="succeeded",
            step="done",
            revision=active.number,
            finished_at=utcnow(),
        )
        return
    for line in checked.plan.requirement_lines:
        log.write(f"    {line}")
    _update_build(app, build.id, revision=number)
    layout = EnvLayout.of(app.settings.envs_dir, env_name)
    outcome = execute(
        BuildJob(
            checked.plan,
            layout,
            number,
            app.settings.builds_dir / build.id,
            previous_lock,
            build.upgrade_all,
            app.settings.build_timeout_seconds,
        ),
        app.installer,
        log,
    )
    _activate(app, build, checked.plan, spec, number, outcome)
    layout.switch_current(number)
    prune_revisions(app, build.env_id or 0)
    log.step("done", f"revision {number} is active ({len(outcome.installed)} packages)")


def _activate(
    app: Codenv, build: BuildRow, plan: Plan, spec: EnvSpec, number: int, outcome: BuildOutcome
) -> None:
    """Record the revision and make it active in one unit of work (the link follows)."""
    with app.db.session() as session:
        env = session.get(CodeEnvRow, build.env_id)
        if env is None:
            raise NotFound(f"code env {build.env_name!r} was deleted", field="name")
        session.add(
            RevisionRow(
                env_id=env.id,
                number=number,
                build_id=build.id,
                plan=plan.to_dict(),
                plan_hash=plan.hash,
                spec=spec.to_dict(),
                lock=outcome.lock,
                installed=[package.to_dict() for package in outcome.installed],
                size_bytes=outcome.size_bytes,
            )
        )
        env.active_revision = number
        row = session.get(BuildRow, build.id)
        assert row is not None
        row.status, row.step, row.revision, row.finished_at = "succeeded", "done", number, utcnow()
