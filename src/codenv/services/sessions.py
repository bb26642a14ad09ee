"""Browser sessions, kept as rows: who is logged in where, until when; ended at will.

The browser's cookie holds a random secret (`secrets.token_urlsafe(32)`, 256 bits); the row
keeps only its SHA-256 (a fast hash is right for a high-entropy secret), the user, when the
session began and was last seen, its source address and user agent, and its CSRF token. A
session ends at logout, after `idle_seconds` without a request, `absolute_seconds` after the
login, and at once when its user's password is changed or reset, or the user is disabled or
deleted (services/accounts.py deletes the rows). Administrators list sessions and end them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from codenv.domain.errors import NotFound
from codenv.services.access_views import iso
from codenv.services.accounts import admin_session, end_sessions_of
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.audit import add_entry
from codenv.services.authentication import actor_of_holder
from codenv.services.views import as_utc
from codenv.storage import holders, queries
from codenv.storage.holders import Executor, HeldSession
from codenv.storage.models import SessionRow, UserRow, utcnow

# Anything longer is no secret of ours: refused before it is hashed.
MAX_SECRET_LENGTH = 128
MAX_USER_AGENT = 256
# last_seen_at is written at most this often per session, not on every request.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    absolute_seconds: int = 12 * 3600
    idle_seconds: int = 2 * 3600


DEFAULT_SESSION_POLICY = SessionPolicy()


@dataclass(frozen=True)
class NewSession:
    """A session just started: its secret goes into the cookie, and nowhere else."""

    id: int
    secret: str
    csrf: str
    max_age: int


@dataclass(frozen=True)
class ActiveSession:
    """The session of a request: its user's rights as of now, and its CSRF token."""

    id: int
    actor: Actor
    csrf: str


@dataclass(frozen=True)
class SessionInfo:
    id: int
    user: str
    created_at: str | None
    last_seen_at: str | None
    expires_at: str | None
    source: str
    user_agent: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _ends_at(row: SessionRow | HeldSession, policy: SessionPolicy) -> datetime:
    """When the session ends if nothing is heard from it: idle or absolute, the earlier."""
    last_seen, expires = as_utc(row.last_seen_at), as_utc(row.expires_at)
    assert last_seen is not None and expires is not None
    return min(expires, last_seen + timedelta(seconds=policy.idle_seconds))


def _info(row: SessionRow, policy: SessionPolicy) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        user=row.user.name,
        created_at=iso(row.created_at),
        last_seen_at=iso(row.last_seen_at),
        expires_at=iso(_ends_at(row, policy)),
        source=row.source,
        user_agent=row.user_agent,
    )


def _by_secret(session: Executor, secret: str) -> HeldSession | None:
    if not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    return holders.session_by_hash(session, _hash(secret))


def _drop_ended(session: Session, now: datetime, policy: SessionPolicy) -> None:
    idle_since = now - timedelta(seconds=policy.idle_seconds)
    session.execute(
        delete(SessionRow).where(
            or_(SessionRow.expires_at <= now, SessionRow.last_seen_at <= idle_since)
        )
    )


def start_session(
    app: Codenv,
    actor: Actor,
    *,
    user_agent: str = "",
    policy: SessionPolicy = DEFAULT_SESSION_POLICY,
    now: datetime | None = None,
) -> NewSession:
    """A new session for the (just authenticated) actor; ended sessions are cleared away."""
    assert actor.user_id is not None, "the local administrator has no session"
    moment = now or utcnow()
    secret = secrets.token_urlsafe(32)
    with app.db.session() as session:
        _drop_ended(session, moment, policy)
        row = SessionRow(
            secret_hash=_hash(secret),
            user_id=actor.user_id,
            csrf=secrets.token_urlsafe(24),
            created_at=moment,
            last_seen_at=moment,
            expires_at=moment + timedelta(seconds=policy.absolute_seconds),
            source=actor.source[:128],
            user_agent=user_agent[:MAX_USER_AGENT],
        )
        session.add(row)
        session.flush()
        return NewSession(row.id, secret, row.csrf, policy.absolute_seconds)


def resume_session(
    app: Codenv,
    secret: str,
    *,
    source: str = "",
    policy: SessionPolicy = DEFAULT_SESSION_POLICY,
    now: datetime | None = None,
) -> ActiveSession | None:
    """The live session whose cookie holds `secret`, or None (unknown, ended, expired, or its
    user disabled)."""
    moment = now or utcnow()
    with app.db.connection() as connection:
        held = _by_secret(connection, secret)
        if held is None or not held.holder.active:
            return None
        if _ends_at(held, policy) <= moment:
            _delete(connection, held.id)
            return None
        last_seen = as_utc(held.last_seen_at)
        if last_seen is None or moment - last_seen >= LAST_SEEN_RESOLUTION:
            holders.session_seen(connection, held.id, moment)
        return ActiveSession(held.id, actor_of_holder(held.holder, source), held.csrf)


def end_session(app: Codenv, secret: str, *, source: str = "") -> None:
    """Log out: the session whose cookie holds `secret` ends (nothing happens without one)."""
    with app.db.session() as session:
        held = _by_secret(session, secret)
        if held is not None:
            _delete(session, held.id)
            name = held.holder.name
            add_entry(session, name, "logout", name, source=source)


def _delete(session: Executor, session_id: int) -> None:
    session.execute(delete(SessionRow).where(SessionRow.id == session_id))


def list_sessions(
    app: Codenv,
    actor: Actor,
    *,
    user: str | None = None,
    policy: SessionPolicy = DEFAULT_SESSION_POLICY,
    now: datetime | None = None,
) -> list[SessionInfo]:
    """The live sessions (of one `user`, when given), the most recently seen first."""
    moment = now or utcnow()
    with admin_session(app, actor, "list sessions") as session:
        query = select(SessionRow).join(UserRow).order_by(SessionRow.last_seen_at.desc())
        if user is not None:
            query = query.where(SessionRow.user_id == queries.require_user(session, user).id)
        rows = session.scalars(query)
        return [_info(row, policy) for row in rows if _ends_at(row, policy) > moment]


def end_session_by_id(
    app: Codenv, actor: Actor, session_id: int, *, policy: SessionPolicy = DEFAULT_SESSION_POLICY
) -> SessionInfo:
    """End one session: that browser is logged out at its next request."""
    with admin_session(app, actor, "end sessions") as session:
        row = session.get(SessionRow, session_id)
        if row is None:
            raise NotFound(f"no session #{session_id}", field="session")
        info = _info(row, policy)
        session.delete(row)
        add_entry(session, actor, "session.end", info.user, {"session": session_id})
        return info


def end_user_sessions(app: Codenv, actor: Actor, name: str) -> int:
    """End every session of the user `name`; how many there were."""
    with admin_session(app, actor, "end sessions") as session:
        user = queries.require_user(session, name)
        ended = end_sessions_of(session, user.id)
        add_entry(session, actor, "session.end_all", user.name, {"sessions": ended})
        return ended
