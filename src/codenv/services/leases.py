"""Leases: a build is claimed by a worker under a lease that its watcher renews every
lease/3 (`BuildWatch`); the reaper (`reap_expired`, every lease/2 in `codenv serve` and
`codenv worker`: `start_reaper`) fails every build whose lease expired, with a reason naming
its worker and host, and frees its build slot. Nothing depends on the processes of another
host: there only the lease speaks. On this host a holder whose process is gone is certainly
dead, and expires at once (the fast path of start-up recovery).

Queued builds have no lease and never expire; the in-process queue of a process that died
(the embedded default) is adopted by a reaper on the same host (`adopt_orphans`).
Times are each host's clock (UTC): hosts keep them in step (NTP), far closer than a lease."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from codenv.domain.builds import BuildStatus
from codenv.envdirs.layout import EnvLayout
from codenv.jobs.liveness import holder_gone, holder_token
from codenv.jobs.queue import LocalWorkerQueue
from codenv.services.app import Codenv
from codenv.services.leftovers import sweep_leftovers
from codenv.services.slots import Renewing, lease_until, renewal_seconds
from codenv.services.views import as_utc
from codenv.storage import leases as lease_queries
from codenv.storage import queries
from codenv.storage.models import BuildRow, BuildSlotRow, utcnow

logger = logging.getLogger(__name__)
CANCEL_POLL_SECONDS = 0.5
UNCHANGED = "the active revision is unchanged"
GONE = "stopped before it finished (its process is gone: killed or crashed)"
_named: dict[str, str] = {}  # "worker": the name set for this process


def set_worker_name(name: str) -> None:
    """The name this process's claims record (`codenv worker`: "celery@<host>")."""
    _named["worker"] = name


def worker_identity() -> tuple[str, str]:
    """(worker, host) as a build claimed here records them."""
    host = socket.gethostname()
    return _named.get("worker") or f"codenv-{os.getpid()}@{host}", host


def claim(app: Codenv, build_id: str) -> bool:
    """Claim a queued build for this process; False when it is not (or no longer) claimable."""
    worker, host = worker_identity()
    claimer = lease_queries.Claimer(holder_token(), worker, host, lease_until(app))
    with app.db.session() as session:
        return lease_queries.claim_build(session, build_id, claimer, utcnow())


class BuildWatch(Renewing):
    """One thread per claimed build: renews its lease (and its slot's) every lease/3, and
    turns a cancel request recorded by any process, or the loss of the lease, into `event`.
    `lost` then says why the build must stop."""

    def __init__(self, app: Codenv, build_id: str) -> None:
        super().__init__(app, f"build-{build_id}")
        self.event = threading.Event()
        self.lost: str | None = None
        self.holds_slot = False
        self._build_id, self._holder = build_id, holder_token()

    def _release(self) -> None:
        with self._app.db.session() as session:
            lease_queries.end_lease(session, self._build_id, self._holder)

    def _lose(self, why: str) -> None:
        self.lost = f"this worker lost the build's lease ({why}); {UNCHANGED}"
        self.event.set()

    def _renew(self) -> None:
        renewed = time.monotonic()  # the claim set the first lease
        lease = self._app.settings.lease_seconds
        while not self._stop.wait(CANCEL_POLL_SECONDS):
            now = time.monotonic()
            due = now - renewed >= renewal_seconds(self._app)
            try:
                if not self._check(renew=due):
                    return
            except SQLAlchemyError as error:
                if now - renewed >= lease:  # past its lease: the reaper may have failed it
                    self._lose(f"not renewed for {lease} s: {error.__class__.__name__}")
                    return
                continue
            renewed = now if due else renewed

    def _check(self, renew: bool) -> bool:
        """Poll the cancel flag, renew when due; False once there is nothing left to renew.
        A cancelled build keeps its lease while it stops."""
        with self._app.db.session() as session:
            row = session.get(BuildRow, self._build_id)
            if row is None or row.cancel_requested or row.status == BuildStatus.CANCELLED:
                self.event.set()
            if not renew or lease_queries.renew_build_lease(
                session, self._build_id, self._holder, lease_until(self._app), self.holds_slot
            ):
                return row is not None
        if not self.event.is_set():
            self._lose("it was reaped, or its build slot freed, while it ran")
        return False


def _expiry(row: BuildRow, now: datetime) -> str | None:
    """Why the claim of `row` is over (None: it holds)."""
    who = f"the worker {row.worker or '?'} on host {row.host or '?'}"
    if holder_gone(row.holder):
        return f"{who} {GONE}; {UNCHANGED}"
    expires = as_utc(row.lease_expires_at)
    if expires is not None and expires < now:
        return (
            f"{who} stopped renewing its lease, which expired at {expires:%Y-%m-%d %H:%M:%S} "
            f"UTC (killed, or its host lost); {UNCHANGED}"
        )
    return None


def _drop_local_leftovers(app: Codenv, session: Session, row: BuildRow) -> None:
    """A build whose process here is gone: its half-built revision and staging directory go
    now (the slot is still held in this transaction). A process still alive removes its own
    once it sees its lease gone; one of another host, that host's sweep (services.leftovers)."""
    layout = EnvLayout.of(app.settings.envs_dir, row.env_name)
    layout.drop_staged(row.id)
    number = row.revision
    if row.env_id and number is not None and not queries.revision(session, row.env_id, number):
        layout.remove_revision(number)


def _fail(app: Codenv, session: Session, row: BuildRow, reason: str) -> bool:
    if not lease_queries.fail_claimed_build(session, row, reason, utcnow()):
        return False
    queries.release_build_slot(session, row.id)
    if holder_gone(row.holder):
        _drop_local_leftovers(app, session, row)
    return True


def _log_failure(app: Codenv, build_id: str, reason: str) -> None:
    # Loaded when a build was reaped: every command recovers at start-up, few reap a build.
    from codenv.services.log_store import open_build_log

    log = open_build_log(app, build_id)
    log.step("failed", reason)
    log.close()


def _slot_over(slot: BuildSlotRow, now: datetime) -> bool:
    expires = as_utc(slot.lease_expires_at)
    return holder_gone(slot.holder) or (expires is not None and expires < now)


def _free_slot(app: Codenv, slot: BuildSlotRow, now: datetime) -> str | None:
    """Free a slot whose holder stopped renewing it, failing its build with it; the build's
    reason (None: no build of its own was failed, as for a rollback's slot)."""
    with app.db.session() as session:
        build = session.get(BuildRow, slot.build_id)
        claimed = build is not None and build.lease_expires_at is not None
        reason = _expiry(build, now) if build is not None and claimed else None
        failed = build is not None and reason is not None and _fail(app, session, build, reason)
        if not failed:
            lease_queries.release_stale_slot(session, slot)
    return reason if failed else None


def free_stale_slot(app: Codenv, env_id: int) -> bool:
    """Free the env's slot if its holder stopped renewing it; True when the slot is free."""
    now = utcnow()
    with app.db.session() as session:
        slot = queries.build_slot(session, env_id)
    if slot is None:
        return True
    if not _slot_over(slot, now):
        return False
    reason = _free_slot(app, slot, now)
    if reason is not None:
        _log_failure(app, slot.build_id, reason)
    return True


def reap_expired(app: Codenv) -> list[str]:
    """Fail the claimed builds whose lease expired (or whose process here is gone), free their
    slots and the slots left expired; the ids of the builds failed."""
    now = utcnow()
    with app.db.session() as session:
        claimed = lease_queries.claimed_builds(session)
    failed: dict[str, str] = {}
    for row in claimed:
        reason = _expiry(row, now)
        if reason is not None:
            with app.db.session() as session:
                if _fail(app, session, row, reason):
                    failed[row.id] = reason
    with app.db.session() as session:
        slots = lease_queries.all_build_slots(session)
    for slot in slots:
        if _slot_over(slot, now) and (reason := _free_slot(app, slot, now)) is not None:
            failed[slot.build_id] = reason
    for build_id, reason in failed.items():
        _log_failure(app, build_id, reason)
    return list(failed)


def adopt_orphans(app: Codenv) -> list[str]:
    """Queued builds left in the in-process queue of a process of this host that died: this
    process's queue runs them (only a queue of threads keeps builds in memory)."""
    if not isinstance(app.queue, LocalWorkerQueue):
        return []
    mine = holder_token()
    with app.db.session() as session:
        held = lease_queries.unclaimed_builds_held_in_memory(session)
    adopted = []
    for row in held:
        if row.holder != mine and holder_gone(row.holder):
            with app.db.session() as session:
                if lease_queries.adopt_build(session, row.id, row.holder, mine):
                    adopted.append(row.id)
    for build_id in adopted:
        app.queue.submit(build_id)
    return adopted


class Reaper:
    """The reaper's daemon thread: a pass at once (a full sweep of this host's envs), then one
    every lease/2 (a sweep of the envs whose builds ended since)."""

    def __init__(self, app: Codenv) -> None:
        self._app = app
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="codenv-reaper")

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        since: datetime | None = None
        interval = self._app.settings.lease_seconds / 2
        while True:
            started = utcnow()
            try:
                reap_expired(self._app)
                adopt_orphans(self._app)
                sweep_leftovers(self._app, since)
                # A build failed by another host's reaper ends on its clock: a lease of margin.
                since = started - timedelta(seconds=self._app.settings.lease_seconds)
            except Exception:
                logger.exception("the reaper's pass failed; the next one tries again")
            if self._stop.wait(interval):
                return


def start_reaper(app: Codenv) -> Reaper:
    """Start the reaper of `codenv serve` and `codenv worker`; `stop()` it at shut-down."""
    return Reaper(app).start()
