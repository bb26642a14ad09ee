"""`codenv status`: the pieces beyond one host as the database sees them: build workers (alive
while their heartbeat is younger than a lease), claimed builds with their leases, the queue,
and each execution node with its envs in agreement with the database, behind, or failed.

Also the workers' heartbeat (`start_worker_heartbeat`), which `codenv worker` starts."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from codenv.domain.secrets import mask_secrets
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.views import as_utc
from codenv.settings import Settings
from codenv.storage.models import BuildRow, CodeEnvRow, utcnow
from codenv.storage.models_nodes import NodeRevisionRow, NodeRow, WorkerRow
from codenv.storage.queries import ACTIVE_STATUSES

logger = logging.getLogger(__name__)
# A worker not seen for this long is gone for good (its host was retired): its row goes.
FORGET_WORKERS_AFTER = timedelta(days=7)
MAX_SHOWN_ERROR = 500


def _iso(moment: datetime | None) -> str | None:
    aware = as_utc(moment)
    return aware.isoformat(timespec="seconds") if aware else None


def _ago(moment: datetime | None, now: datetime) -> float | None:
    aware = as_utc(moment)
    return None if aware is None else round((now - aware).total_seconds(), 1)


def _workers(session: Session, now: datetime, lease: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(WorkerRow).order_by(WorkerRow.name)).all()
    return [
        {
            "name": row.name,
            "host": row.host,
            "queues": list(row.queues),
            "concurrency": row.concurrency,
            "started_at": _iso(row.started_at),
            "last_seen_at": _iso(row.last_seen_at),
            "seen_seconds_ago": _ago(row.last_seen_at, now),
            "alive": (_ago(row.last_seen_at, now) or 0.0) <= lease,
        }
        for row in rows
    ]


def _claimed_builds(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Builds a worker holds under a lease: running, or waiting for their env's build slot."""
    rows = session.scalars(
        select(BuildRow)
        .where(BuildRow.status.in_(ACTIVE_STATUSES), BuildRow.lease_expires_at.is_not(None))
        .order_by(BuildRow.created_at)
    ).all()
    return [
        {
            "id": row.id,
            "env": row.env_name,
            "kind": row.kind,
            "status": row.status,
            "step": row.step,
            "worker": row.worker,
            "host": row.host,
            "started_at": _iso(row.started_at),
            "lease_expires_at": _iso(row.lease_expires_at),
            "expires_in_seconds": -(_ago(row.lease_expires_at, now) or 0.0),
        }
        for row in rows
    ]


def _queued(session: Session) -> int:
    """Builds waiting for a worker: queued and claimed by none."""
    count = session.scalar(
        select(func.count())
        .select_from(BuildRow)
        .where(BuildRow.status == "queued", BuildRow.lease_expires_at.is_(None))
    )
    return int(count or 0)


def _broker(settings: Settings) -> dict[str, Any] | None:
    """The messages waiting in the broker's build queue (None: no broker, builds run in the
    servers' own threads); an unreachable broker is reported, not raised."""
    if not settings.broker_url:
        return None
    from codenv.jobs.broker_depth import queue_length

    found: dict[str, Any] = {"queue": settings.build_queue, "messages": None, "error": None}
    try:
        found["messages"] = queue_length(settings.broker_url, settings.build_queue)
    except Exception as error:  # whatever the broker's client raises, status still answers
        found["error"] = mask_secrets(f"{type(error).__name__}: {error}")[:MAX_SHOWN_ERROR]
    return found


def _node_envs(
    rows: list[NodeRevisionRow], active: dict[int, tuple[str, int]]
) -> dict[str, list[Any]]:
    """One node's envs by agreement: holding the active revision, behind it (not tried yet,
    or tried for an older one), or failed installing it (with why)."""
    mine = {row.env_id: row for row in rows}
    found: dict[str, list[Any]] = {"agreement": [], "behind": [], "failed": []}
    for env_id, (name, number) in sorted(active.items(), key=lambda item: item[1][0]):
        row = mine.get(env_id)
        if row is not None and row.revision == number:
            found["agreement"].append(name)
        elif row is not None and row.state == "failed" and row.wanted == number:
            error = (row.error or "")[-MAX_SHOWN_ERROR:]
            found["failed"].append({"env": name, "revision": number, "error": error})
        else:
            found["behind"].append(name)
    return found


def _nodes(session: Session, now: datetime) -> list[dict[str, Any]]:
    envs = session.execute(
        select(CodeEnvRow.id, CodeEnvRow.name, CodeEnvRow.active_revision).where(
            CodeEnvRow.active_revision.is_not(None)
        )
    ).all()
    active = {env_id: (name, number) for env_id, name, number in envs if number is not None}
    held: dict[str, list[NodeRevisionRow]] = {}
    for row in session.scalars(select(NodeRevisionRow)):
        held.setdefault(row.node, []).append(row)
    return [
        {
            "name": node.name,
            "host": node.host,
            "pythons": list(node.pythons),
            "poll_seconds": node.poll_seconds,
            "last_seen_at": _iso(node.last_seen_at),
            "seen_seconds_ago": _ago(node.last_seen_at, now),
            "envs": _node_envs(held.get(node.name, []), active),
        }
        for node in session.scalars(select(NodeRow).order_by(NodeRow.name))
    ]


def cluster_status(app: Codenv, actor: Actor) -> dict[str, Any]:
    require_admin(actor, "see the status of workers and nodes")
    now = utcnow()
    with app.db.session() as session:
        workers = _workers(session, now, app.settings.lease_seconds)
        builds, queued, nodes = (
            _claimed_builds(session, now),
            _queued(session),
            _nodes(session, now),
        )
    return {
        "lease_seconds": app.settings.lease_seconds,
        "workers": workers,
        "builds": builds,
        # Outside the unit of work: a network call.
        "queue": {"queued": queued, "broker": _broker(app.settings)},
        "nodes": nodes,
    }


@dataclass(frozen=True)
class Worker:
    name: str
    host: str
    queues: tuple[str, ...]
    concurrency: int


class WorkerHeartbeat:
    """A daemon thread that says every lease/3 that this worker lives (`workers.last_seen_at`).
    A heartbeat that fails (the database away) is tried again at the next beat."""

    def __init__(self, app: Codenv, worker: Worker) -> None:
        self._app, self._worker = app, worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="codenv-heartbeat")

    def start(self) -> WorkerHeartbeat:
        with self._app.db.session() as session:
            forgotten = utcnow() - FORGET_WORKERS_AFTER
            session.execute(delete(WorkerRow).where(WorkerRow.last_seen_at < forgotten))
        self._seen(started=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """A worker stopped cleanly is no longer listed (one killed shows as not alive)."""
        self._stop.set()
        self._thread.join()
        try:
            with self._app.db.session() as session:
                session.execute(delete(WorkerRow).where(WorkerRow.name == self._worker.name))
        except SQLAlchemyError:
            logger.warning("the worker %s stays listed: the database is away", self._worker.name)

    def _seen(self, started: bool = False) -> None:
        """Update the worker's row, or write it again (another process of the same name that
        stopped took it away)."""
        now, worker = utcnow(), self._worker
        fields: dict[str, Any] = {
            "host": worker.host,
            "queues": list(worker.queues),
            "concurrency": worker.concurrency,
        }
        if started:
            fields["started_at"] = now
        with self._app.db.session() as session:
            statement = update(WorkerRow).where(WorkerRow.name == worker.name)
            result = session.execute(statement.values(last_seen_at=now, **fields))
            if cast(CursorResult[Any], result).rowcount == 0:
                fields.setdefault("started_at", now)
                session.add(WorkerRow(name=worker.name, last_seen_at=now, **fields))

    def _beat(self) -> None:
        while not self._stop.wait(self._app.settings.lease_seconds / 3):
            try:
                self._seen()
            except SQLAlchemyError:
                logger.warning(
                    "the heartbeat of %s failed; the next one tries again", self._worker.name
                )


def start_worker_heartbeat(
    app: Codenv, name: str, host: str, queues: list[str], concurrency: int
) -> WorkerHeartbeat:
    """Record this worker and keep it alive until `stop()` (call it at shut-down)."""
    return WorkerHeartbeat(app, Worker(name, host, tuple(queues), concurrency)).start()
