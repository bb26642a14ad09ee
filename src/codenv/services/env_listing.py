"""Pages of code envs: one statement per page, whatever the number of envs.

A page row (`EnvSummary`) is what a list draws: no spec, no revision's lock or installed
list. The statement reads only those columns; the saved spec is compared with the active
revision's as stored text, the caller's grants are folded in as one column, and permissions
are a WHERE clause. The full rows of the unpaged list (`all_envs`) keep the spec.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased, lazyload, load_only

from codenv.domain.names import name_key
from codenv.domain.spec_masking import masked_spec
from codenv.envdirs.layout import EnvLayout
from codenv.services.actor import LEVELS, NONE, Actor, level_of
from codenv.services.app import Codenv
from codenv.services.envs import LAST_UPDATE_FAILED, env_status
from codenv.services.listing import (
    DEFAULT_LIMIT,
    FINISHED,
    Page,
    check_limit,
    choice,
    cursor_key,
    ordered,
    page_of,
    text_filter,
)
from codenv.services.read_cache import reader_key
from codenv.services.views import BuildInfo, Capabilities, EnvInfo, plain
from codenv.storage import queries
from codenv.storage.indexed import glob_prefix, like_prefix, spec_python, starts_with
from codenv.storage.models import BuildRow, CodeEnvRow, EnvGrantRow, GroupRow, RevisionRow
from codenv.storage.queries import Order, keyset_after

ENV_STATUSES = ("ready", "building", "failed", "not built", "out of date", LAST_UPDATE_FAILED)
ENV_SORTS: dict[str, Order] = {
    "name": [(CodeEnvRow.name_key, False)],
    "-name": [(CodeEnvRow.name_key, True)],
    "created": [(CodeEnvRow.created_at, False), (CodeEnvRow.id, False)],
    "-created": [(CodeEnvRow.created_at, True), (CodeEnvRow.id, True)],
    "owner": [(CodeEnvRow.owner, False), (CodeEnvRow.name_key, False)],
}
# Made once: an alias proxies every column of its table, which cost more than the rest of a
# page's statement when made per request.
_ACTIVE, _LAST = aliased(RevisionRow, name="active"), aliased(BuildRow, name="last_build")
_LAST_BUILD_ID = queries.last_build_id(CodeEnvRow.id)
# The last build's columns that `BuildInfo.of` reads, as a plain tuple: a row of a page spent
# more time becoming an ORM object than being read.
_LastBuild = namedtuple(
    "_LastBuild",
    "id env_name status step upgrade_all rebuild requested_by revision error created_at "
    "started_at finished_at kind worker host",
)
_LAST_COLUMNS = tuple(getattr(_LAST, name) for name in _LastBuild._fields)
_SPEC_DIFFERS = and_(
    _ACTIVE.id.isnot(None), cast(_ACTIVE.spec, Text) != cast(CodeEnvRow.spec, Text)
)
_LEVEL_NUMBER = case(LEVELS, value=EnvGrantRow.level, else_=NONE)


@dataclass(frozen=True)
class EnvFilter:
    owner: str | None = None
    status: str | None = None  # one of ENV_STATUSES
    python: str | None = None  # "3.11"
    prefix: str | None = None  # of the name, case-insensitive


@dataclass(frozen=True)
class EnvSummary:
    """A row of a page of envs: `EnvInfo` without the spec and what only `show` knows."""

    name: str
    owner: str
    status: str
    python: str
    interpreter: str | None
    active_revision: int | None
    spec_differs: bool
    size_bytes: int
    created_at: str | None
    last_build: BuildInfo | None
    capabilities: Capabilities

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclass(frozen=True)
class _Shape:
    """What the SQL of a list of envs depends on; the rest (who asks, the filters' values,
    the cursor, the limit) are bound parameters. Statements are built once per shape: built
    per request, making one and its cache key cost more than the database's work."""

    manages_all: bool
    grouped: bool
    owner: bool
    python: bool
    prefix: bool
    status: str | None
    sort: str = "name"
    after: bool = False

    @classmethod
    def of(cls, actor: Actor, filters: EnvFilter, sort: str, after: bool = False) -> _Shape:
        return cls(
            actor.manages_all,
            bool(actor.group_keys),
            bool(filters.owner),
            bool(filters.python),
            bool(filters.prefix),
            filters.status,
            sort,
            after,
        )


def _params(actor: Actor, filters: EnvFilter) -> dict[str, Any]:
    """The bound values of a `_Shape`'s statement (those it does not use are ignored)."""
    return {
        "actor_key": name_key(actor.name),
        "group_keys": sorted(actor.group_keys),
        "owner_key": name_key(filters.owner or ""),
        "python": filters.python,
        "prefix_glob": glob_prefix(name_key(filters.prefix or "")),
        "prefix_like": like_prefix(name_key(filters.prefix or "")),
    }


_GROUP_KEYS: BindParameter[str] = bindparam("group_keys", expanding=True)
_PREFIX_GLOB: BindParameter[str] = bindparam("prefix_glob")
_PREFIX_LIKE: BindParameter[str] = bindparam("prefix_like")


def _granted(shape: _Shape) -> ColumnElement[int]:
    """The highest level the actor's groups were granted on the env (NONE without one)."""
    if shape.manages_all or not shape.grouped:
        return literal(NONE)
    best = (
        select(func.max(_LEVEL_NUMBER))
        .where(EnvGrantRow.env_id == CodeEnvRow.id, GroupRow.id == EnvGrantRow.group_id)
        .where(GroupRow.name_key.in_(_GROUP_KEYS))
        .scalar_subquery()
    )
    return func.coalesce(best, NONE)


def _visible(shape: _Shape) -> ColumnElement[bool]:
    """`services.actor.may_use` as SQL: manages all, owns, usable by all, or a grant to one of
    the actor's groups (tests/test_scale_queries.py checks that both agree)."""
    if shape.manages_all:
        return true()
    allowed = [
        func.lower(CodeEnvRow.owner) == bindparam("actor_key"),
        CodeEnvRow.usable_by_all.is_(True),
    ]
    if shape.grouped:
        # Not correlated: the database makes the set of granted envs once per page, not a
        # lookup per env it passes while looking for a page of visible ones.
        granted = (
            select(EnvGrantRow.env_id)
            .join(GroupRow, GroupRow.id == EnvGrantRow.group_id)
            .where(EnvGrantRow.level.in_(tuple(LEVELS)), GroupRow.name_key.in_(_GROUP_KEYS))
        )
        allowed.append(CodeEnvRow.id.in_(granted))
    return or_(*allowed)


def _status_clause(status: str) -> ColumnElement[bool]:
    """`envs.env_status` as SQL, for the filter."""
    built, last = CodeEnvRow.active_revision.isnot(None), _LAST
    quiet = or_(last.id.is_(None), last.status.in_(("succeeded", "cancelled")))
    clauses: dict[str, ColumnElement[bool]] = {
        "building": and_(last.id.isnot(None), not_(last.status.in_(FINISHED))),
        "failed": and_(not_(built), last.status == "failed"),
        "not built": and_(not_(built), quiet),
        LAST_UPDATE_FAILED: and_(built, last.status == "failed"),
        "out of date": and_(built, quiet, _SPEC_DIFFERS),
        "ready": and_(built, quiet, not_(_SPEC_DIFFERS)),
    }
    return clauses[status]


def _filtered(query: Select[Any], shape: _Shape) -> Select[Any]:
    query = query.outerjoin(
        _ACTIVE,
        and_(_ACTIVE.env_id == CodeEnvRow.id, _ACTIVE.number == CodeEnvRow.active_revision),
    ).outerjoin(_LAST, _LAST.id == _LAST_BUILD_ID)
    query = query.where(_visible(shape))
    if shape.owner:
        query = query.where(func.lower(CodeEnvRow.owner) == bindparam("owner_key"))
    if shape.python:
        query = query.where(spec_python(CodeEnvRow.spec) == bindparam("python"))
    if shape.prefix:
        query = query.where(starts_with(CodeEnvRow.name_key, _PREFIX_GLOB, _PREFIX_LIKE))
    if shape.status:
        query = query.where(_status_clause(shape.status))
    return query


# A page row: these columns, the caller's granted level, the last build's, the sort key's.
_ROW_COLUMNS = (
    CodeEnvRow.name,
    CodeEnvRow.owner,
    spec_python(CodeEnvRow.spec),
    CodeEnvRow.active_revision,
    CodeEnvRow.usable_by_all,
    CodeEnvRow.created_at,
    _SPEC_DIFFERS,
    _ACTIVE.size_bytes,
    _ACTIVE.plan["interpreter"].as_string(),
)
_LAST_START = len(_ROW_COLUMNS) + 1  # where a page row's last build columns start
_LAST_END = _LAST_START + len(_LAST_COLUMNS)


@lru_cache(maxsize=512)
def _page_statement(shape: _Shape) -> Select[Any]:
    """A page's statement: `limit` rows after the cursor's key (`after0`, `after1`)."""
    order = ENV_SORTS[shape.sort]
    columns = (*_ROW_COLUMNS, _granted(shape), *_LAST_COLUMNS, *(column for column, _ in order))
    query = _filtered(select(*columns), shape)
    if shape.after:
        after = [bindparam(f"after{n}", type_=column.type) for n, (column, _) in enumerate(order)]
        query = query.where(keyset_after(order, after))
    return ordered(query, order).limit(bindparam("limit", type_=Integer))


def _summary(actor: Actor, row: Any) -> EnvSummary:
    name, owner, python, active, usable, created, differs, size, interpreter, granted = row[
        :_LAST_START
    ]
    last = row[_LAST_START:_LAST_END]
    last_build = BuildInfo.of(_LastBuild._make(last)) if last[0] is not None else None
    built, spec_differs = active is not None, bool(differs)
    return EnvSummary(
        name=name,
        owner=owner,
        status=env_status(active, last_build, spec_differs),
        python=python,
        interpreter=interpreter if built else None,
        active_revision=active,
        spec_differs=spec_differs,
        size_bytes=size if built and size is not None else 0,
        created_at=created.isoformat(timespec="seconds"),
        last_build=last_build,
        capabilities=Capabilities.of_level(level_of(actor, owner, usable, granted)),
    )


def _checked_filter(filters: EnvFilter) -> EnvFilter:
    return EnvFilter(
        owner=text_filter(filters.owner, "owner"),
        status=choice(text_filter(filters.status, "status"), ENV_STATUSES, "status"),
        python=text_filter(filters.python, "python"),
        prefix=text_filter(filters.prefix, "prefix"),
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
    """The envs the actor may use, one page of `EnvSummary`: 1 query, after the data
    version's (a page read at the same version is answered again: services/read_cache.py)."""
    key = ("envs", reader_key(actor), filters, limit, cursor, sort)
    return app.reads.read(key, lambda: _read_page(app, actor, filters, limit, cursor, sort))


def _read_page(
    app: Codenv, actor: Actor, filters: EnvFilter, limit: int, cursor: str | None, sort: str
) -> Page:
    filters = _checked_filter(filters)
    sort = choice(sort, tuple(ENV_SORTS), "sort") or "name"
    order, kind = ENV_SORTS[sort], f"envs{sort}"
    params = {**_params(actor, filters), "limit": check_limit(limit) + 1}
    if cursor is not None:
        key = cursor_key(cursor, kind, order)
        params.update((f"after{n}", value) for n, value in enumerate(key))
    statement = _page_statement(_Shape.of(actor, filters, sort, cursor is not None))
    with app.db.connection() as connection:  # columns only: no ORM session needed
        rows = connection.execute(statement, params).all()
    keys = [list(row[_LAST_END:]) for row in rows]
    return page_of([_summary(actor, row) for row in rows], keys, kind, limit)


def all_envs(
    app: Codenv, actor: Actor, filters: EnvFilter = EnvFilter(), sort: str = "name"
) -> list[EnvInfo]:
    """Every env the actor may use (that `filters` keep), with its spec: the plain list of
    `envs.list_envs` and of the API without `limit`: 2 queries."""
    filters = _checked_filter(filters)
    order = ENV_SORTS.get(choice(sort, tuple(ENV_SORTS), "sort") or "name", ENV_SORTS["name"])
    columns = (
        CodeEnvRow,
        _ACTIVE.id,
        _ACTIVE.spec,
        _ACTIVE.size_bytes,
        _ACTIVE.plan["interpreter"].as_string(),
        *_LAST_COLUMNS,
    )
    query = _filtered(select(*columns), _Shape.of(actor, filters, sort))
    query = query.options(load_only(*_ENV_COLUMNS))
    if actor.manages_all:  # capabilities need no grants: all of them anyway
        query = query.options(lazyload(CodeEnvRow.grants))
    with app.db.session() as session:
        rows = session.execute(ordered(query, order), _params(actor, filters)).all()
        infos = [_env_info(app, actor, row) for row in rows]
    # The filter compared specs as stored text, these rows as values: a row whose specs differ
    # only in key order shows "ready" and is left out of "out of date".
    return [info for info in infos if filters.status in (None, info.status)]


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


def _env_info(app: Codenv, actor: Actor, row: Any) -> EnvInfo:
    width = len(_LAST_COLUMNS)  # the row ends with the last build's columns
    env, active_id, active_spec, size, interpreter = row[:-width]
    last_row = _LastBuild._make(row[-width:])
    last = BuildInfo.of(last_row) if last_row.id is not None else None
    spec_differs = active_id is not None and active_spec != env.spec
    return EnvInfo(
        name=env.name,
        owner=env.owner,
        status=env_status(env.active_revision, last, spec_differs),
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
