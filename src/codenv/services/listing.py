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
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased, lazyload, load_only, selectinload

from codenv.domain.builds import BuildKind, BuildStatus
from codenv.domain.errors import InvalidInput
from codenv.domain.names import name_key
from codenv.domain.spec_masking import masked_spec
from codenv.envdirs.layout import EnvLayout
from codenv.services.access_views import AuditEntry, RequestInfo, UserInfo
from codenv.services.actor import LEVELS, Actor, env_for, require_admin
from codenv.services.app import Codenv
from codenv.services.envs import LAST_UPDATE_FAILED, env_status
from codenv.services.views import BuildInfo, Capabilities, EnvInfo, RevisionInfo
from codenv.storage import queries
from codenv.storage.models import (
    AuditRow,
    BuildRow,
    CodeEnvRow,
    EnvGrantRow,
    EnvRequestRow,
    GroupRow,
    RevisionRow,
    UserRow,
)
from codenv.storage.queries import Key, Order, decode_cursor, encode_cursor, keyset_after

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_FILTER = 256
ENV_STATUSES = ("ready", "building", "failed", "not built", "out of date", LAST_UPDATE_FAILED)
REQUEST_STATUSES = ("pending", "approved", "rejected")
FINISHED = tuple(status.value for status in BuildStatus if status.finished)


@dataclass(frozen=True)
class Page:
    """One page of views (each with `to_dict`) and the cursor of the next (None: the last)."""

    items: list[Any]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"items": [item.to_dict() for item in self.items], "next_cursor": self.next_cursor}


@dataclass(frozen=True)
class EnvFilter:
    owner: str | None = None
    status: str | None = None  # one of ENV_STATUSES
    python: str | None = None  # "3.11"
    prefix: str | None = None  # of the name, case-insensitive


# --- input: limits, cursors, filters -------------------------------------------------------


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT} (got {limit})", field="limit")
    return limit


def _text(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_FILTER:
        raise InvalidInput(f"{name} is longer than {MAX_FILTER} characters", field=name)
    return value


def _choice(value: str | None, allowed: Sequence[str], name: str) -> str | None:
    if value is not None and value not in allowed:
        raise InvalidInput(f"unknown {name} {value!r}; use {', '.join(allowed)}", field=name)
    return value


def _paged(query: Select[Any], kind: str, order: Order, cursor: str | None, limit: int) -> Any:
    """`query` ordered by `order`, after `cursor`, with one row more than `limit`."""
    if cursor is not None:
        query = query.where(keyset_after(order, decode_cursor(cursor, kind, _types(order))))
    ordered = [column.desc() if descending else column.asc() for column, descending in order]
    return query.order_by(*ordered).limit(check_limit(limit) + 1)


def _types(order: Order) -> list[type]:
    return [column.type.python_type for column, _ in order]


def _page(items: list[Any], keys: list[list[Key]], kind: str, limit: int) -> Page:
    if len(items) <= limit:
        return Page(items, None)
    return Page(items[:limit], encode_cursor(kind, keys[limit - 1]))


# --- code envs ----------------------------------------------------------------------------

ENV_SORTS: dict[str, Order] = {
    "name": [(CodeEnvRow.name_key, False)],
    "-name": [(CodeEnvRow.name_key, True)],
    "created": [(CodeEnvRow.created_at, False), (CodeEnvRow.id, False)],
    "-created": [(CodeEnvRow.created_at, True), (CodeEnvRow.id, True)],
    "owner": [(CodeEnvRow.owner, False), (CodeEnvRow.name_key, False)],
}
# What a list row needs of the env: never its revisions, nor anything a build wrote.
_ENV_COLUMNS = (
    CodeEnvRow.id,
    CodeEnvRow.name,
    CodeEnvRow.name_key,
    CodeEnvRow.owner,
    CodeEnvRow.spec,
    CodeEnvRow.active_revision,
    CodeEnvRow.usable_by_all,
    CodeEnvRow.created_at,
)


def visible_to(actor: Actor) -> ColumnElement[bool]:
    """`services.actor.may_use` as SQL: manages all, owns, usable by all, or a grant to one of
    the actor's groups (tests/test_scale_queries.py checks that both agree)."""
    if actor.manages_all:
        return true()
    allowed = [
        func.lower(CodeEnvRow.owner) == name_key(actor.name),
        CodeEnvRow.usable_by_all.is_(True),
    ]
    if actor.group_keys:
        granted = (
            exists()
            .where(EnvGrantRow.env_id == CodeEnvRow.id, EnvGrantRow.level.in_(tuple(LEVELS)))
            .where(GroupRow.id == EnvGrantRow.group_id)
            .where(GroupRow.name_key.in_(sorted(actor.group_keys)))
        )
        allowed.append(granted)
    return or_(*allowed)


def _status_clause(status: str, last: Any, active: Any) -> ColumnElement[bool]:
    """`envs.env_status` as SQL, for the filter (the shown status is computed per row)."""
    built = CodeEnvRow.active_revision.isnot(None)
    quiet = or_(last.id.is_(None), last.status.in_(("succeeded", "cancelled")))
    differs = and_(active.id.isnot(None), cast(active.spec, Text) != cast(CodeEnvRow.spec, Text))
    clauses: dict[str, ColumnElement[bool]] = {
        "building": and_(last.id.isnot(None), not_(last.status.in_(FINISHED))),
        "failed": and_(not_(built), last.status == "failed"),
        "not built": and_(not_(built), quiet),
        LAST_UPDATE_FAILED: and_(built, last.status == "failed"),
        "out of date": and_(built, quiet, differs),
        "ready": and_(built, quiet, not_(differs)),
    }
    return clauses[status]


def _env_query(actor: Actor, filters: EnvFilter) -> Select[Any]:
    """Envs the actor may use with their active revision's few columns and their last build,
    in one statement (the grants come in one more, for the capabilities)."""
    active, last = aliased(RevisionRow), aliased(BuildRow)
    query = (
        select(
            CodeEnvRow,
            active.id,
            active.spec,
            active.size_bytes,
            active.plan["interpreter"].as_string(),
            last,
        )
        .outerjoin(
            active,
            and_(active.env_id == CodeEnvRow.id, active.number == CodeEnvRow.active_revision),
        )
        .outerjoin(last, last.id == queries.last_build_id(CodeEnvRow.id))
        .where(visible_to(actor))
        .options(load_only(*_ENV_COLUMNS))
    )
    if actor.manages_all:  # capabilities need no grants: all of them anyway
        query = query.options(lazyload(CodeEnvRow.grants))
    if filters.owner:
        query = query.where(func.lower(CodeEnvRow.owner) == name_key(filters.owner))
    if filters.python:
        query = query.where(CodeEnvRow.spec["python"].as_string() == filters.python)
    if filters.prefix:
        prefix = name_key(filters.prefix)
        query = query.where(CodeEnvRow.name_key.startswith(prefix, autoescape=True))
    if filters.status:
        query = query.where(_status_clause(filters.status, last, active))
    return query


def _env_info(app: Codenv, actor: Actor, row: Any) -> EnvInfo:
    env, active_id, active_spec, size, interpreter, last_row = row
    last = BuildInfo.of(last_row) if last_row is not None else None
    spec_differs = active_id is not None and active_spec != env.spec
    return EnvInfo(
        name=env.name,
        owner=env.owner,
        status=env_status(env, last, spec_differs),
        spec=masked_spec(env.spec),
        base_packages=[],
        python=env.spec["python"],
        interpreter=interpreter if active_id is not None else None,
        active_revision=env.active_revision,
        spec_differs=spec_differs,
        size_bytes=size if active_id is not None else 0,
        path=str(EnvLayout.of(app.settings.envs_dir, env.name).root),
        created_at=env.created_at.isoformat(timespec="seconds"),
        last_build=last,
        capabilities=Capabilities.of(actor, env),
    )


def _checked_filter(filters: EnvFilter) -> EnvFilter:
    return EnvFilter(
        owner=_text(filters.owner, "owner"),
        status=_choice(_text(filters.status, "status"), ENV_STATUSES, "status"),
        python=_text(filters.python, "python"),
        prefix=_text(filters.prefix, "prefix"),
    )


def find_envs(
    app: Codenv,
    actor: Actor,
    filters: EnvFilter = EnvFilter(),
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    sort: str = "name",
) -> Page:
    """The envs the actor may use, one page: 2 queries (1 for administrators)."""
    filters = _checked_filter(filters)
    order = ENV_SORTS.get(_choice(sort, tuple(ENV_SORTS), "sort") or "name", ENV_SORTS["name"])
    query = _paged(_env_query(actor, filters), f"envs{sort}", order, cursor, limit)
    with app.db.session() as session:
        rows = session.execute(query).all()
        infos = [_env_info(app, actor, row) for row in rows]
        keys = [[getattr(row[0], column.key) for column, _ in order] for row in rows]
    return _keep_status(_page(infos, keys, f"envs{sort}", limit), filters.status)


def _keep_status(page: Page, status: str | None) -> Page:
    # The filter compares specs as stored text, the row as values: a row whose two specs
    # differ only in key order would show "ready" under "out of date"; it is left out.
    if status is None:
        return page
    return Page([info for info in page.items if info.status == status], page.next_cursor)


def all_envs(app: Codenv, actor: Actor) -> list[EnvInfo]:
    """Every env the actor may use, by name (`envs.list_envs`), in the same 2 queries."""
    query = _env_query(actor, EnvFilter()).order_by(CodeEnvRow.name_key)
    with app.db.session() as session:
        return [_env_info(app, actor, row) for row in session.execute(query).all()]


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
    """The env's builds, newest first: 3 queries (the env, its grants, the page)."""
    _choice(status, tuple(BuildStatus), "status")
    _choice(kind, tuple(BuildKind), "kind")
    with app.db.session() as session:
        env = env_for(session, actor, name)
        query = select(BuildRow).where(BuildRow.env_id == env.id)
        if status:
            query = query.where(BuildRow.status == status)
        if kind:
            query = query.where(BuildRow.kind == kind)
        rows = session.scalars(_paged(query, "builds", _BUILD_ORDER, cursor, limit)).all()
        items = [BuildInfo.of(row) for row in rows]
        keys: list[list[Key]] = [[row.created_at, row.id] for row in rows]
    return _page(items, keys, "builds", limit)


_REVISION_ORDER: Order = [(RevisionRow.number, True)]


def find_revisions(
    app: Codenv, actor: Actor, name: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page:
    """The env's revisions, newest first: 3 queries (the env, its grants, the page)."""
    with app.db.session() as session:
        env = env_for(session, actor, name)
        query = queries.revision_columns(env.id)
        rows = session.execute(_paged(query, "revisions", _REVISION_ORDER, cursor, limit)).all()
        items = [RevisionInfo.of_columns(row, env.active_revision) for row in rows]
    return _page(items, [[item.number] for item in items], "revisions", limit)


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
    if action := _text(action, "action"):
        prefix = action.removesuffix("*")
        query = query.where(
            AuditRow.action.startswith(prefix, autoescape=True)
            if action.endswith("*")
            else AuditRow.action == action
        )
    if target := _text(target, "target"):
        query = query.where(AuditRow.target == target)
    if actor_name := _text(actor_name, "actor"):
        query = query.where(AuditRow.actor == actor_name)
    with app.db.session() as session:
        rows = session.scalars(_paged(query, "audit", _AUDIT_ORDER, cursor, limit)).all()
        items = [AuditEntry.of(row) for row in rows]
    return _page(items, [[item.id] for item in items], "audit", limit)


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
) -> Page:
    """The administrators' inbox: pending requests first, then the newest; 1 query."""
    require_admin(actor, "read the requests inbox")
    query = select(EnvRequestRow, _PENDING_LAST)
    if _choice(status, REQUEST_STATUSES, "status"):
        query = query.where(EnvRequestRow.status == status)
    with app.db.session() as session:
        rows = session.execute(_paged(query, "requests", _REQUEST_ORDER, cursor, limit)).all()
        items = [RequestInfo.of(row[0]) for row in rows]
        keys: list[list[Key]] = [[row[1], row[0].id] for row in rows]
    return _page(items, keys, "requests", limit)


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
    if prefix := _text(prefix, "prefix"):
        query = query.where(UserRow.name_key.startswith(name_key(prefix), autoescape=True))
    with app.db.session() as session:
        rows = session.scalars(_paged(query, "users", _USER_ORDER, cursor, limit)).all()
        items = [UserInfo.of(row) for row in rows]
        keys: list[list[Key]] = [[row.name_key] for row in rows]
    return _page(items, keys, "users", limit)
