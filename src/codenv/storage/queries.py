"""The lookups services share, each inside the caller's unit of work."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codenv.domain.errors import NotFound
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
IMAGE_KIND = "image"


def env_by_name(session: Session, name: str) -> CodeEnvRow | None:
    return session.scalar(select(CodeEnvRow).where(CodeEnvRow.name_key == name_key(name)))


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
        .order_by(BuildRow.created_at.desc())
        .limit(1)
    )
    return session.scalar(query)


def unfinished_builds(session: Session) -> Sequence[BuildRow]:
    return session.scalars(select(BuildRow).where(BuildRow.status.in_(ACTIVE_STATUSES))).all()


def take_build_slot(db: Database, env_id: int, build_id: str, holder: str) -> bool:
    """Insert the env's lock row in a unit of work of its own; False when another holds it.

    Raises NotFound when the env does not exist (deleted meanwhile): its lock can never be
    taken, so a caller polling for it must not wait forever.
    """
    try:
        with db.session() as session:
            session.add(BuildSlotRow(env_id=env_id, build_id=build_id, holder=holder))
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
    return session.scalars(select(UserRow).order_by(UserRow.name_key)).all()


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


def token_by_hash(session: Session, secret_hash: str) -> ApiTokenRow | None:
    return session.scalar(select(ApiTokenRow).where(ApiTokenRow.secret_hash == secret_hash))


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
