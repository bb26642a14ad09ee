"""Lists that cost the same for 10 and 1,000 envs: pages, filters and sorts done by the database.

Every `find_*` answers one `Page` in a constant number of queries: the rows of the page only
(keyset pagination: `limit` + 1 rows after the cursor, through an index), only the columns a
row shows (never a revision's lock or installed list), permissions as a WHERE clause. The
cursor is opaque to callers: the sort key of the page's last row, encoded; it stays valid when
rows are added or removed between pages (no offset that shifts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Select,
    case,
    select,
)
from sqlalchemy.orm import selectinload

from codenv.domain.builds import BuildKind, BuildStatus
from codenv.domain.errors import InvalidInput
from codenv.domain.names import name_key
from codenv.services.access_views import AuditEntry, RequestInfo, UserInfo
from codenv.services.actor import Actor, env_for, require_admin
from codenv.services.app import Codenv
from codenv.services.read_cache import reader_key
from codenv.services.views import BuildInfo, RevisionInfo
from codenv.storage import queries
from codenv.storage.models import (
    AuditRow,
    BuildRow,
    EnvRequestRow,
    RevisionRow,
    UserRow,
)
from codenv.storage.queries import Key, Order, decode_cursor, encode_cursor, keyset_after

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_FILTER = 256
REQUEST_STATUSES = ("pending", "approved", "rejected")
FINISHED = tuple(status.value for status in BuildStatus if status.finished)


@dataclass(frozen=True)
class Page:
    """One page of views (each with `to_dict`) and the cursor of the next (None: the last)."""

    items: Sequence[Any]  # a tuple: a page may be shared by requests (services/read_cache.py)
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [item.to_dict() for item in self.items], "next_cursor": self.next_cursor}


# --- input: limits, cursors, filters -------------------------------------------------------


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT} (got {limit})", field="limit")
    return limit


def text_filter(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_FILTER:
        raise InvalidInput(f"{name} is longer than {MAX_FILTER} characters", field=name)
    return value


def choice(value: str | None, allowed: Sequence[str], name: str) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidInput(f"unknown {name} {value!r}; use {', '.join(allowed)}", field=name)
    return value


def paged(query: Select[Any], kind: str, order: Order, cursor: str | None, limit: int) -> Any:
    """`query` ordered by `order`, after `cursor`, with one row more than `limit`."""
    if cursor is not None:
        query = query.where(keyset_after(order, cursor_key(cursor, kind, order)))
    return ordered(query, order).limit(check_limit(limit) + 1)


def ordered(query: Select[Any], order: Order) -> Select[Any]:
    return query.order_by(*(column.desc() if desc else column.asc() for column, desc in order))


def cursor_key(cursor: str, kind: str, order: Order) -> list[Key]:
    """The sort key a cursor of the list `kind`, sorted by `order`, holds (or InvalidInput)."""
    return decode_cursor(cursor, kind, [column.type.python_type for column, _ in order])


def page_of(items: list[Any], keys: list[list[Key]], kind: str, limit: int) -> Page:
    if len(items) <= limit:
        return Page(tuple(items), None)
    return Page(tuple(items[:limit]), encode_cursor(kind, keys[limit - 1]))


# --- builds, revisions --------------------------------------------------------------------

_BUILD_ORDER: Order = [(BuildRow.created_at, True), (BuildRow.id, True)]


def find_builds(
    app: Codenv,
    actor: Actor,
    name: str,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> Page:
    """The env's builds, newest first: 3 queries (the env, its grants, the page), after the
    data version's (a page read at the same version is answered again)."""
    key = ("builds", reader_key(actor), name, limit, cursor, status, kind)
    return app.reads.read(key, lambda: _read_builds(app, actor, name, limit, cursor, status, kind))


def _read_builds(
    app: Codenv,
    actor: Actor,
    name: str,
    limit: int,
    cursor: str | None,
    status: str | None,
    kind: str | None,
) -> Page:
    choice(status, tuple(BuildStatus), "status")
    choice(kind, tuple(BuildKind), "kind")
    with app.db.session() as session:
        env = env_for(session, actor, name)
        query = select(BuildRow).where(BuildRow.env_id == env.id)
        if status:
            query = query.where(BuildRow.status == status)
        if kind:
            query = query.where(BuildRow.kind == kind)
        rows = session.scalars(paged(query, "builds", _BUILD_ORDER, cursor, limit)).all()
        items = [BuildInfo.of(row) for row in rows]
        keys: list[list[Key]] = [[row.created_at, row.id] for row in rows]
    return page_of(items, keys, "builds", limit)


_REVISION_ORDER: Order = [(RevisionRow.number, True)]


def find_revisions(
    app: Codenv, actor: Actor, name: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page:
    """The env's revisions, newest first: 3 queries (the env, its grants, the page)."""
    with app.db.session() as session:
        env = env_for(session, actor, name)
        query = queries.revision_columns(env.id)
        rows = session.execute(paged(query, "revisions", _REVISION_ORDER, cursor, limit)).all()
        items = [RevisionInfo.of_columns(row, env.active_revision) for row in rows]
    return page_of(items, [[item.number] for item in items], "revisions", limit)


# --- administrators: audit, requests, users -----------------------------------------------

_AUDIT_ORDER: Order = [(AuditRow.id, True)]


def find_audit(
    app: Codenv,
    actor: Actor,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    actor_name: str | None = None,
) -> Page:
    """The audit log, newest first; administrators only. `action` may end in `*` (`env.*`)."""
    require_admin(actor, "read the audit log")
    query = select(AuditRow)
    if action := text_filter(action, "action"):
        prefix = action.removesuffix("*")
        query = query.where(
            AuditRow.action.startswith(prefix, autoescape=True)
            if action.endswith("*")
            else AuditRow.action == action
        )
    if target := text_filter(target, "target"):
        query = query.where(AuditRow.target == target)
    if actor_name := text_filter(actor_name, "actor"):
        query = query.where(AuditRow.actor == actor_name)
    with app.db.session() as session:
        rows = session.scalars(paged(query, "audit", _AUDIT_ORDER, cursor, limit)).all()
        items = [AuditEntry.of(row) for row in rows]
    return page_of(items, [[item.id] for item in items], "audit", limit)


# Pending first (0), then decided (1); newest first in each.
_PENDING_LAST = case((EnvRequestRow.status == "pending", 0), else_=1)
_REQUEST_ORDER: Order = [(_PENDING_LAST, False), (EnvRequestRow.id, True)]


def find_requests(
    app: Codenv,
    actor: Actor,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    status: str | None = None,
    mine: bool = False,
) -> Page:
    """The administrators' inbox, or with `mine` the actor's own requests (anyone): pending
    requests first, then the newest; 1 query."""
    query = select(EnvRequestRow, _PENDING_LAST)
    if mine:
        query = query.where(EnvRequestRow.requester == actor.name)
    else:
        require_admin(actor, "read the requests inbox")
    if choice(status, REQUEST_STATUSES, "status"):
        query = query.where(EnvRequestRow.status == status)
    # A cursor of one list is refused by the other.
    kind = "myrequests" if mine else "requests"
    with app.db.session() as session:
        rows = session.execute(paged(query, kind, _REQUEST_ORDER, cursor, limit)).all()
        items = [RequestInfo.of(row[0]) for row in rows]
        keys: list[list[Key]] = [[row[1], row[0].id] for row in rows]
    return page_of(items, keys, kind, limit)


_USER_ORDER: Order = [(UserRow.name_key, False)]


def find_users(
    app: Codenv,
    actor: Actor,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    prefix: str | None = None,
) -> Page:
    """Users by name, with their groups; administrators only; 2 queries."""
    require_admin(actor, "list users")
    query = select(UserRow).options(selectinload(UserRow.memberships))
    if prefix := text_filter(prefix, "prefix"):
        query = query.where(UserRow.name_key.startswith(name_key(prefix), autoescape=True))
    with app.db.session() as session:
        rows = session.scalars(paged(query, "users", _USER_ORDER, cursor, limit)).all()
        items = [UserInfo.of(row) for row in rows]
        keys: list[list[Key]] = [[row.name_key] for row in rows]
    return page_of(items, keys, "users", limit)
