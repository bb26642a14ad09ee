"""Who holds an API token or a console session, read as plain columns in one statement.

Every API request and console page starts here, so these statements are built once (the
secret's hash is a bound parameter) and read columns, not ORM objects: the token or session,
its user, and one row per group of the user (the user's row alone when they have none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from codenv.storage.models import ApiTokenRow, GroupRow, MembershipRow, SessionRow, UserRow

# What these statements run on: a request's plain connection (Database.connection), or the
# ORM session of a unit of work that writes more (logout's audit entry).
Executor = Session | Connection


class GroupRights(NamedTuple):
    name: str
    administrator: bool
    may_create_envs: bool
    may_manage_all_envs: bool


@dataclass(frozen=True)
class Holder:
    """A user as authentication sees them: who, whether enabled, and their groups' rights."""

    user_id: int
    name: str
    active: bool
    groups: tuple[GroupRights, ...]

    @classmethod
    def of_user(cls, user: UserRow) -> Holder:
        groups = (membership.group for membership in user.memberships)
        return cls(
            user.id,
            user.name,
            user.active,
            tuple(
                GroupRights(g.name, g.administrator, g.may_create_envs, g.may_manage_all_envs)
                for g in groups
            ),
        )


@dataclass(frozen=True)
class HeldToken:
    id: int
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None
    holder: Holder


@dataclass(frozen=True)
class HeldSession:
    id: int
    csrf: str
    last_seen_at: datetime
    expires_at: datetime
    holder: Holder


_USER_AND_GROUPS = (
    UserRow.id,
    UserRow.name,
    UserRow.active,
    GroupRow.name,
    GroupRow.administrator,
    GroupRow.may_create_envs,
    GroupRow.may_manage_all_envs,
)


def _with_holder(query: Select[Any], user_id: Any) -> Select[Any]:
    return (
        query.join(UserRow, UserRow.id == user_id)
        .outerjoin(MembershipRow, MembershipRow.user_id == UserRow.id)
        .outerjoin(GroupRow, GroupRow.id == MembershipRow.group_id)
    )


_TOKEN_COLUMNS: tuple[Any, ...] = (
    ApiTokenRow.id,
    ApiTokenRow.revoked_at,
    ApiTokenRow.expires_at,
    ApiTokenRow.last_used_at,
)
_TOKEN = _with_holder(select(*_TOKEN_COLUMNS, *_USER_AND_GROUPS), ApiTokenRow.user_id).where(
    ApiTokenRow.secret_hash == bindparam("secret_hash")
)
_SESSION_COLUMNS: tuple[Any, ...] = (
    SessionRow.id,
    SessionRow.csrf,
    SessionRow.last_seen_at,
    SessionRow.expires_at,
)
_SESSION = _with_holder(select(*_SESSION_COLUMNS, *_USER_AND_GROUPS), SessionRow.user_id).where(
    SessionRow.secret_hash == bindparam("secret_hash")
)


def _holder(rows: Sequence[Any], start: int) -> Holder:
    user_id, name, active = rows[0][start : start + 3]
    groups = tuple(GroupRights(*row[start + 3 :]) for row in rows if row[start + 3] is not None)
    return Holder(user_id, name, active, groups)


def token_by_hash(session: Executor, secret_hash: str) -> HeldToken | None:
    """The token whose secret hashes to `secret_hash`, with its holder: one query."""
    rows = session.execute(_TOKEN, {"secret_hash": secret_hash}).all()
    if not rows:
        return None
    token_id, revoked, expires, used = rows[0][: len(_TOKEN_COLUMNS)]
    return HeldToken(token_id, revoked, expires, used, _holder(rows, len(_TOKEN_COLUMNS)))


def session_by_hash(session: Executor, secret_hash: str) -> HeldSession | None:
    """The console session whose secret hashes to `secret_hash`, with its holder: one query."""
    rows = session.execute(_SESSION, {"secret_hash": secret_hash}).all()
    if not rows:
        return None
    session_id, csrf, seen, expires = rows[0][: len(_SESSION_COLUMNS)]
    return HeldSession(session_id, csrf, seen, expires, _holder(rows, len(_SESSION_COLUMNS)))


def token_used(session: Executor, token_id: int, moment: datetime) -> None:
    session.execute(
        update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=moment)
    )


def session_seen(session: Executor, session_id: int, moment: datetime) -> None:
    session.execute(
        update(SessionRow).where(SessionRow.id == session_id).values(last_seen_at=moment)
    )
