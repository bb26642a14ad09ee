"""The lookups services share, each inside the caller's unit of work."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased, joinedload, selectinload

from codenv.domain.errors import InvalidInput, NotFound
from codenv.domain.names import name_key
from codenv.storage.db import Database
from codenv.storage.models import (
    ApiTokenRow,
    BuildRow,
    BuildSlotRow,
    CodeEnvRow,
    EnvRequestRow,
    GroupRow,
    MembershipRow,
    RevisionRow,
    UserRow,
)

ACTIVE_STATUSES = ("queued", "running")
MAX_CURSOR = 512  # characters: a cursor holds one row's sort key
IMAGE_KIND = "image"


# Every request about one env starts here: built once, with the env's grants (which every
# permission check reads) joined rather than fetched by a second query.
_ENV_BY_KEY = (
    select(CodeEnvRow)
    .where(CodeEnvRow.name_key == bindparam("key"))
    .options(joinedload(CodeEnvRow.grants))
)


def env_by_name(session: Session, name: str) -> CodeEnvRow | None:
    return session.scalars(_ENV_BY_KEY, {"key": name_key(name)}).unique().first()


def require_env(session: Session, name: str) -> CodeEnvRow:
    env = env_by_name(session, name)
    if env is None:
        raise NotFound(f"no code env named {name!r}", field="name")
    return env


def all_envs(session: Session) -> Sequence[CodeEnvRow]:
    return session.scalars(select(CodeEnvRow).order_by(CodeEnvRow.name_key)).all()


def revision(session: Session, env_id: int, number: int) -> RevisionRow | None:
    return session.scalar(
        select(RevisionRow).where(RevisionRow.env_id == env_id, RevisionRow.number == number)
    )


def next_revision_number(session: Session, env_id: int) -> int:
    highest = session.scalar(
        select(func.max(RevisionRow.number)).where(RevisionRow.env_id == env_id)
    )
    return (highest or 0) + 1


def builds_of(session: Session, env_id: int, limit: int | None = 50) -> Sequence[BuildRow]:
    """The env's builds, newest first (all of them with `limit=None`)."""
    query = select(BuildRow).where(BuildRow.env_id == env_id).order_by(BuildRow.created_at.desc())
    return session.scalars(query if limit is None else query.limit(limit)).all()


def last_build(session: Session, env_id: int) -> BuildRow | None:
    """The env's last build of its revisions (an image build has its own status: `images`)."""
    query = (
        select(BuildRow)
        .where(BuildRow.env_id == env_id, BuildRow.kind != IMAGE_KIND)
        .order_by(BuildRow.created_at.desc(), BuildRow.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def last_build_id(env_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ScalarSelect[str]:
    """The id of the last build of the env `env_id` (a column of the enclosing query), as
    `last_build` picks it: one index lookup per env (ix_builds_env_created)."""
    last = aliased(BuildRow)
    return (
        select(last.id)
        .where(last.env_id == env_id, last.kind != IMAGE_KIND)
        .order_by(last.created_at.desc(), last.id.desc())
        .limit(1)
        .correlate_except(last)
        .scalar_subquery()
    )


def unfinished_builds(session: Session) -> Sequence[BuildRow]:
    return session.scalars(select(BuildRow).where(BuildRow.status.in_(ACTIVE_STATUSES))).all()


def take_build_slot(db: Database, env_id: int, build_id: str, holder: str, until: datetime) -> bool:
    """Insert the env's slot row in a unit of work of its own, under a lease until `until`;
    False when another holds it.

    Raises NotFound when the env does not exist (deleted meanwhile): its slot can never be
    taken, so a caller polling for it must not wait forever.
    """
    try:
        with db.session() as session:
            session.add(
                BuildSlotRow(
                    env_id=env_id, build_id=build_id, holder=holder, lease_expires_at=until
                )
            )
    except IntegrityError:
        # The primary key (another holder) or the foreign key (no such env) refused the row.
        with db.session() as session:
            if session.get(CodeEnvRow, env_id) is None:
                raise NotFound(f"code env #{env_id} no longer exists") from None
        return False
    return True


def build_slot(session: Session, env_id: int) -> BuildSlotRow | None:
    return session.get(BuildSlotRow, env_id)


def release_build_slot(session: Session, build_id: str) -> None:
    session.execute(delete(BuildSlotRow).where(BuildSlotRow.build_id == build_id))


# --- accounts -----------------------------------------------------------------------------


def user_by_name(session: Session, name: str) -> UserRow | None:
    return session.scalar(select(UserRow).where(UserRow.name_key == name_key(name.strip())))


def require_user(session: Session, name: str, field: str = "user") -> UserRow:
    user = user_by_name(session, name)
    if user is None:
        raise NotFound(f"no user named {name!r}", field=field)
    return user


def all_users(session: Session) -> Sequence[UserRow]:
    """Every user with their groups, in 2 queries (the memberships batched)."""
    query = select(UserRow).options(selectinload(UserRow.memberships)).order_by(UserRow.name_key)
    return session.scalars(query).all()


def user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(UserRow)) or 0


def group_by_name(session: Session, name: str) -> GroupRow | None:
    return session.scalar(select(GroupRow).where(GroupRow.name_key == name_key(name.strip())))


def require_group(session: Session, name: str, field: str = "group") -> GroupRow:
    group = group_by_name(session, name)
    if group is None:
        raise NotFound(f"no group named {name!r}", field=field)
    return group


def all_groups(session: Session) -> Sequence[GroupRow]:
    return session.scalars(select(GroupRow).order_by(GroupRow.name_key)).all()


def active_admin_count(session: Session) -> int:
    """Active users in at least one group with the administrator right."""
    return (
        session.scalar(
            select(func.count(func.distinct(UserRow.id)))
            .join(MembershipRow, MembershipRow.user_id == UserRow.id)
            .join(GroupRow, GroupRow.id == MembershipRow.group_id)
            .where(UserRow.active.is_(True), GroupRow.administrator.is_(True))
        )
        or 0
    )


def tokens_of(session: Session, user_id: int | None) -> Sequence[ApiTokenRow]:
    """The tokens of one user, or of every user (`None`), newest first."""
    query = select(ApiTokenRow).order_by(ApiTokenRow.id.desc())
    if user_id is not None:
        query = query.where(ApiTokenRow.user_id == user_id)
    return session.scalars(query).all()


# --- code env requests --------------------------------------------------------------------


def pending_request(session: Session, name: str) -> EnvRequestRow | None:
    return session.scalar(select(EnvRequestRow).where(EnvRequestRow.pending_key == name_key(name)))


def requests(session: Session, requester: str | None = None) -> Sequence[EnvRequestRow]:
    """Pending first, then newest first; only `requester`'s when given."""
    query = select(EnvRequestRow).order_by(
        (EnvRequestRow.status != "pending"), EnvRequestRow.id.desc()
    )
    if requester is not None:
        query = query.where(EnvRequestRow.requester == requester)
    return session.scalars(query).all()


# --- keyset pagination (services/listing.py) ----------------------------------------------

Key = str | int | datetime


def encode_cursor(kind: str, values: Sequence[Key]) -> str:
    """The opaque cursor of a row whose sort key is `values`, for lists of `kind`."""
    parts = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([kind, *parts], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, types: Sequence[type]) -> list[Key]:
    """The sort key in `cursor`; InvalidInput (field `cursor`) unless it is one this list gave."""
    bad = InvalidInput(
        "this cursor was not given by this list; start again without it", field="cursor"
    )
    if len(cursor) > MAX_CURSOR:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(decoded, list) or decoded[:1] != [kind] or len(decoded) != len(types) + 1:
        raise bad
    values: list[Key] = []
    for value, wanted in zip(decoded[1:], types, strict=True):
        if wanted is datetime and isinstance(value, str):
            try:
                values.append(datetime.fromisoformat(value))
            except ValueError:
                raise bad from None
        elif type(value) is wanted and isinstance(value, str | int):
            values.append(value)
        else:
            raise bad
    return values


Order = Sequence[tuple[Any, bool]]  # (column, descending)


def keyset_after(order: Order, values: Sequence[Key | BindParameter[Any]]) -> ColumnElement[bool]:
    """Rows strictly after the key `values` in `order` (keyset pagination)."""
    column, descending = order[0]
    beyond: ColumnElement[bool] = column < values[0] if descending else column > values[0]
    if len(order) == 1:
        return beyond
    return or_(beyond, and_(column == values[0], keyset_after(order[1:], values[1:])))


def revision_columns(env_id: int) -> Select[Any]:
    """What a revision's list row shows, without its lock and installed list (their count
    is counted by the database): `RevisionInfo.of_columns` reads these, in this order."""
    return select(
        RevisionRow.number,
        RevisionRow.pruned,
        RevisionRow.build_id,
        RevisionRow.plan["python_version"].as_string(),
        RevisionRow.plan_hash,
        func.json_array_length(RevisionRow.installed),
        RevisionRow.size_bytes,
        RevisionRow.created_at,
        RevisionRow.origin,
    ).where(RevisionRow.env_id == env_id)
