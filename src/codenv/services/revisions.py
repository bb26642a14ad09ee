"""Revisions: list them, show what one installed, roll back to one, remove one.

On automation and API nodes the revisions are versions (imported from bundles): several stay
usable at once (`NAME@N`) and none is pruned; one that no bundle uses any more is removed by
name (`remove_revision`)."""

from __future__ import annotations

import logging
import uuid
from typing import Any, NoReturn

from codenv.domain.errors import Conflict, NotFound
from codenv.envdirs.layout import EnvLayout
from codenv.services.activation import settle_env
from codenv.services.actor import UPDATE, Actor, env_for
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.services.images import delete_stale_images
from codenv.services.installed import show_installed
from codenv.services.leases import free_stale_slot
from codenv.services.runtime import drop_version_kernel, no_such_revision
from codenv.services.slots import SlotHold
from codenv.services.views import RevisionInfo
from codenv.storage import queries
from codenv.storage.models import CodeEnvRow, RevisionRow

logger = logging.getLogger(__name__)


def list_revisions(app: Codenv, actor: Actor, name: str) -> list[RevisionInfo]:
    """Newest first, in 3 queries, without the revisions' locks and installed lists."""
    with app.db.session() as session:
        env = env_for(session, actor, name)
        query = queries.revision_columns(env.id).order_by(RevisionRow.number.desc())
        return [RevisionInfo.of_columns(row, env.active_revision) for row in session.execute(query)]


def show_revision(app: Codenv, actor: Actor, name: str, number: int) -> RevisionInfo:
    """One revision, kept or pruned (its row is history)."""
    with app.db.session() as session:
        env = env_for(session, actor, name)
        row = queries.revision(session, env.id, number)
        if row is None:
            raise no_such_revision(env, number)
        return RevisionInfo.of(row, env.active_revision)


def installed_packages(
    app: Codenv, actor: Actor, name: str, number: int | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """The packages recorded after the build of revision `number` (default: the active one)."""
    shown = show_installed(app, actor, name, number)
    return shown.revision, shown.packages


def _rollback_target(app: Codenv, row: RevisionRow | None, name: str, number: int) -> None:
    if row is None:
        raise NotFound(f"code env {name!r} has no revision {number}", field="revision")
    if row.pruned or not EnvLayout.of(app.settings.envs_dir, name).python(number).exists():
        raise Conflict(
            f"revision {number} of {name!r} was pruned; it cannot be restored", field="revision"
        )


def rollback(app: Codenv, actor: Actor, name: str, number: int) -> RevisionInfo:
    """Switch back to a built revision without resolving. Only the active revision changes:
    the saved spec (with unbuilt changes) stays, and `show` says that it differs.

    Like a build: the database first (the commit is the rollback), then the disk settled.
    """
    with app.db.session() as session:
        env = env_for(session, actor, name, UPDATE)
        _rollback_target(app, queries.revision(session, env.id, number), env.name, number)
        env_id, env_name = env.id, env.name
    hold = SlotHold.take(app, env_id, f"rollback-{uuid.uuid4().hex[:22]}")
    if hold is None:
        _refuse_busy(app, env_id, env_name, "roll back")
    with hold:
        with app.db.session() as session:
            env = queries.require_env(session, name)
            row = queries.revision(session, env_id, number)
            assert row is not None
            env.active_revision, env.settled = number, False
            restored = RevisionInfo.of(row, number)
        settle_env(app, env_id, lambda message: logger.warning("%s: %s", env_name, message))
        record(app, actor, "env.rollback", env_name, {"revision": number})
        return restored


def _removal_target(env: CodeEnvRow, row: RevisionRow | None, number: int) -> RevisionRow:
    if row is None or row.pruned:
        raise no_such_revision(env, number)
    if number == env.active_revision:
        raise Conflict(
            f"revision {number} is the active version of {env.name!r}; make another one "
            f"active first (`codenv rollback {env.name} N`)",
            field="revision",
        )
    return row


def remove_revision(app: Codenv, actor: Actor, name: str, number: int) -> RevisionInfo:
    """Remove a kept revision other than the active one: its directory and its kernelspec go,
    its row stays (history), marked pruned. Held in the build slot, so that no rollback makes
    it active meanwhile."""
    with app.db.session() as session:
        env = env_for(session, actor, name, UPDATE)
        _removal_target(env, queries.revision(session, env.id, number), number)
        env_id, env_name = env.id, env.name
    hold = SlotHold.take(app, env_id, f"remove-{uuid.uuid4().hex[:24]}")
    if hold is None:
        _refuse_busy(app, env_id, env_name, "remove a revision")
    with hold:
        with app.db.session() as session:
            now = session.get(CodeEnvRow, env_id)
            if now is None:
                raise NotFound(f"code env {env_name!r} was deleted", field="name")
            row = _removal_target(now, queries.revision(session, env_id, number), number)
            row.pruned = True  # the commit is the removal; the disk follows
            removed = RevisionInfo.of(row, now.active_revision)
        EnvLayout.of(app.settings.envs_dir, env_name).remove_revision(number)
        drop_version_kernel(app, env_name, number)
        record(app, actor, "env.revision.remove", env_name, {"revision": number})
        delete_stale_images(app, logger.warning, env_id)
        return removed


def _refuse_busy(app: Codenv, env_id: int, name: str, action: str) -> NoReturn:
    if free_stale_slot(app, env_id):
        raise Conflict(f"a build of {name!r} had stopped and was cleared; {action} again")
    raise Conflict(f"a build of {name!r} is running; {action} when it ends")
