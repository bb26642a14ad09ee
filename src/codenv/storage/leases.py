"""The lookups and conditional updates of leases (services/leases.py): claims, renewals and
reaping, each one statement whose WHERE decides between racing processes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, Executable, delete, or_, select, update
from sqlalchemy.orm import Session

from codenv.storage.models import BuildRow, BuildSlotRow
from codenv.storage.queries import ACTIVE_STATUSES


class Claimer(NamedTuple):
    """Who claims a build: its process token, worker name and host, and its lease's end."""

    holder: str
    worker: str
    host: str
    until: datetime


def _changed(session: Session, statement: Executable) -> int:
    """The rows `statement` changed; no row loaded in the session needs to follow it."""
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return cast(CursorResult[Any], result).rowcount


def claim_build(session: Session, build_id: str, claimer: Claimer, now: datetime) -> bool:
    """Claim a queued build whose lease is free (never claimed, or its claimer's lease
    expired): one conditional UPDATE, so of racing claimers exactly one wins, and a claim of a
    build claimed or finished meanwhile (a redelivered task) changes nothing."""
    changed = _changed(
        session,
        update(BuildRow)
        .where(
            BuildRow.id == build_id,
            BuildRow.status == "queued",
            BuildRow.env_id.is_not(None),
            or_(BuildRow.lease_expires_at.is_(None), BuildRow.lease_expires_at < now),
        )
        .values(
            holder=claimer.holder,
            worker=claimer.worker,
            host=claimer.host,
            lease_expires_at=claimer.until,
        ),
    )
    return changed == 1


def renew_build_lease(
    session: Session, build_id: str, holder: str, until: datetime, with_slot: bool
) -> bool:
    """Extend the claim (and the build slot it holds); False when the build is no longer this
    holder's: reaped, finished, or claimed by another."""
    renewed = _changed(
        session,
        update(BuildRow)
        .where(
            BuildRow.id == build_id,
            BuildRow.holder == holder,
            BuildRow.status.in_(ACTIVE_STATUSES),
            BuildRow.lease_expires_at.is_not(None),
        )
        .values(lease_expires_at=until),
    )
    if renewed != 1:
        return False
    return not with_slot or renew_slot_lease(session, build_id, until)


def renew_slot_lease(session: Session, build_id: str, until: datetime) -> bool:
    changed = _changed(
        session,
        update(BuildSlotRow)
        .where(BuildSlotRow.build_id == build_id)
        .values(lease_expires_at=until),
    )
    return changed == 1


def end_lease(session: Session, build_id: str, holder: str) -> None:
    """The build ended (or never started): its claim holds nothing any more."""
    _changed(
        session,
        update(BuildRow)
        .where(BuildRow.id == build_id, BuildRow.holder == holder)
        .values(lease_expires_at=None),
    )


def claimed_builds(session: Session) -> Sequence[BuildRow]:
    """Builds under a lease: claimed (queued for their slot) or running."""
    return session.scalars(
        select(BuildRow).where(
            BuildRow.status.in_(ACTIVE_STATUSES), BuildRow.lease_expires_at.is_not(None)
        )
    ).all()


def fail_claimed_build(session: Session, seen: BuildRow, reason: str, now: datetime) -> bool:
    """Fail a claimed build as `seen`, unless its holder renewed its lease (or ended it)
    since: the reaper and a late renewal may race, and exactly one of them wins."""
    assert seen.lease_expires_at is not None
    changed = _changed(
        session,
        update(BuildRow)
        .where(
            BuildRow.id == seen.id,
            BuildRow.holder == seen.holder,
            BuildRow.status.in_(ACTIVE_STATUSES),
            BuildRow.lease_expires_at <= seen.lease_expires_at,
        )
        .values(
            status="failed", step="failed", error=reason, finished_at=now, lease_expires_at=None
        ),
    )
    return changed == 1


def unclaimed_builds_held_in_memory(session: Session) -> Sequence[BuildRow]:
    """Queued, never claimed, held by the in-process queue of the process named `holder`."""
    return session.scalars(
        select(BuildRow).where(
            BuildRow.status == "queued",
            BuildRow.lease_expires_at.is_(None),
            BuildRow.holder != "",
        )
    ).all()


def adopt_build(session: Session, build_id: str, was: str, holder: str) -> bool:
    """Move a queued, unclaimed build into `holder`'s queue, if no one else adopted it."""
    changed = _changed(
        session,
        update(BuildRow)
        .where(
            BuildRow.id == build_id,
            BuildRow.holder == was,
            BuildRow.status == "queued",
            BuildRow.lease_expires_at.is_(None),
        )
        .values(holder=holder),
    )
    return changed == 1


def builds_ended_since(session: Session, since: datetime) -> Sequence[BuildRow]:
    """Builds that failed or were cancelled since `since`: what they left on disk may remain."""
    return session.scalars(
        select(BuildRow).where(
            BuildRow.finished_at >= since,
            BuildRow.status.in_(("failed", "cancelled")),
            BuildRow.env_id.is_not(None),
        )
    ).all()


def all_build_slots(session: Session) -> Sequence[BuildSlotRow]:
    return session.scalars(select(BuildSlotRow)).all()


def release_stale_slot(session: Session, seen: BuildSlotRow) -> bool:
    """Delete the slot as `seen`, unless its holder renewed it since."""
    changed = _changed(
        session,
        delete(BuildSlotRow).where(
            BuildSlotRow.env_id == seen.env_id,
            BuildSlotRow.build_id == seen.build_id,
            BuildSlotRow.lease_expires_at <= seen.lease_expires_at,
        ),
    )
    return changed == 1
