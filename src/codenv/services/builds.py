"""Builds: request an update (or an init-script run), queue it, read builds and their logs.

The job itself is `services.build_jobs.run_build`."""

from __future__ import annotations

import uuid
from pathlib import Path

from codenv.domain.builds import BuildKind, BuildStatus, check_transition
from codenv.domain.errors import Conflict, NotFound, PermissionDenied, Unavailable
from codenv.domain.spec import EnvSpec
from codenv.jobs.liveness import queue_holder
from codenv.services.actor import UPDATE, Actor, env_for, may_use, require_update
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.services.boxes import require_sandbox
from codenv.services.node_settings import require_design_node
from codenv.services.plans import check_spec
from codenv.services.views import BuildInfo, UpdateResult
from codenv.storage import queries
from codenv.storage.models import BuildRow, CodeEnvRow, utcnow


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
    kind: BuildKind = BuildKind.UPDATE,
    build_id: str | None = None,
) -> str:
    """Queue a build; `build_id` when the caller staged its input under that id already."""
    require_sandbox(app)
    build_id = build_id or uuid.uuid4().hex
    holder = queue_holder(app.queue)
    with app.db.session() as session:
        session.add(
            BuildRow(
                id=build_id,
                env_id=env_id,
                env_name=env_name,
                status=BuildStatus.QUEUED,
                kind=kind,
                upgrade_all=upgrade_all,
                rebuild=rebuild,
                requested_by=actor.name,
                holder=holder,
            )
        )
    try:
        app.queue.submit(build_id)
    except Unavailable as error:
        # No worker will ever hear of it, and a queued build waits for one forever.
        _fail_unsent(app, build_id, error.message)
        raise
    return build_id


def _fail_unsent(app: Codenv, build_id: str, message: str) -> None:
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        if row is not None and row.status == BuildStatus.QUEUED:
            row.status = check_transition(row.status, BuildStatus.FAILED)
            row.step, row.error, row.finished_at = "failed", message, utcnow()


def request_update(
    app: Codenv, actor: Actor, name: str, *, upgrade_all: bool = False, rebuild: bool = False
) -> UpdateResult:
    """Update: at once "already up to date" when the plan equals the active revision's.

    Only where envs are designed: elsewhere an update would resolve again, not reproduce the
    bundle the env came in."""
    require_design_node(app, f"update code env {name!r}")
    with app.db.session() as session:
        env = env_for(session, actor, name, UPDATE)
        spec = EnvSpec.from_dict(env.spec)
        active = queries.revision(session, env.id, env.active_revision or 0)
        env_id, env_name = env.id, env.name
    checked = check_spec(app, spec)
    if active and active.plan_hash == checked.plan.hash and not (upgrade_all or rebuild):
        message = f"already up to date (revision {active.number})"
        return UpdateResult(env_name, None, True, message)
    build_id = enqueue_build(app, actor, env_id, env_name, upgrade_all=upgrade_all, rebuild=rebuild)
    details = {"build": build_id, "upgrade_all": upgrade_all, "rebuild": rebuild}
    record(app, actor, "env.update", env_name, details)
    return UpdateResult(env_name, build_id, False, f"build {build_id} queued")


def get_build(app: Codenv, actor: Actor, build_id: str) -> BuildInfo:
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        env = session.get(CodeEnvRow, row.env_id) if row and row.env_id else None
        if row is None or not _may_see(actor, row, env):
            raise NotFound(f"no build {build_id!r}", field="build")
        return BuildInfo.of(row)


def _may_see(actor: Actor, row: BuildRow, env: CodeEnvRow | None) -> bool:
    if env is not None:
        return may_use(actor, env)
    # The env was deleted: its builds stay visible to those who may manage all, and the
    # one who asked for the build.
    return actor.manages_all or row.requested_by == actor.name


def list_builds(app: Codenv, actor: Actor, name: str) -> list[BuildInfo]:
    with app.db.session() as session:
        env = env_for(session, actor, name)
        return [BuildInfo.of(row) for row in queries.builds_of(session, env.id)]


def cancel_build(app: Codenv, actor: Actor, build_id: str) -> BuildInfo:
    """Cancel a queued build at once, or ask a running one to stop (its worker kills the
    installer's process group and removes the half-built revision within a second or so).

    Needs the update right on the env, like starting a build.
    """
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        env = session.get(CodeEnvRow, row.env_id) if row and row.env_id else None
        if row is None or not _may_see(actor, row, env):
            raise NotFound(f"no build {build_id!r}", field="build")
        if env is not None:
            require_update(actor, env)
        elif not actor.manages_all:
            raise PermissionDenied(f"you may not cancel build {build_id!r}")
        status = BuildStatus(row.status)
        if status.finished:
            raise Conflict(f"build {build_id} is already {status.value}", field="build")
        if status is BuildStatus.QUEUED:
            row.status = check_transition(row.status, BuildStatus.CANCELLED)
            row.step, row.finished_at = BuildStatus.CANCELLED.value, utcnow()
            row.error = f"cancelled by {actor.name} before it started"
        else:
            row.cancel_requested = True
        info = BuildInfo.of(row)
    record(app, actor, "build.cancel", info.env, {"build": build_id, "was": status.value})
    return info
