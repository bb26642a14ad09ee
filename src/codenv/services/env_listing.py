"""Pages of code envs: one statement per page, whatever the number of envs.

A page row (`EnvSummary`) is what a list draws: no spec, no revision's lock or installed
list. The statement reads only those columns; the saved spec is compared with the active
revision's as stored text, the caller's grants are folded in as one column, and permissions
are a WHERE clause. The full rows of the unpaged list (`all_envs`) keep the spec.
"""

from __future__ import annotations

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
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Bundle, aliased, lazyload, load_only

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
    choice,
    page_of,
    paged,
    text_filter,
)
from codenv.services.views import BuildInfo, Capabilities, EnvInfo, plain
from codenv.storage import queries
from codenv.storage.models import BuildRow, CodeEnvRow, EnvGrantRow, GroupRow, RevisionRow
from codenv.storage.queries import Order

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
# The last build's columns that `BuildInfo.of` reads, as a plain row: a row of a page spent
# more time becoming an ORM object than being read.
_LAST_FIELDS = (
    "id env_name status step upgrade_all rebuild requested_by revision error created_at "
    "started_at finished_at kind worker host"
)
_LAST_COLUMNS: Bundle[Any] = Bundle(
    "last_build", *(getattr(_LAST, name) for name in _LAST_FIELDS.split())
)
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


def _granted(actor: Actor) -> ColumnElement[int]:
    """The highest level the actor's groups were granted on the env (NONE without one)."""
    if actor.manages_all or not actor.group_keys:
        return literal(NONE)
    best = (
        select(func.max(_LEVEL_NUMBER))
        .where(EnvGrantRow.env_id == CodeEnvRow.id, GroupRow.id == EnvGrantRow.group_id)
        .where(GroupRow.name_key.in_(sorted(actor.group_keys)))
        .scalar_subquery()
    )
    return func.coalesce(best, NONE)


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


def _filtered(query: Select[Any], actor: Actor, filters: EnvFilter) -> Select[Any]:
    query = query.outerjoin(
        _ACTIVE,
        and_(_ACTIVE.env_id == CodeEnvRow.id, _ACTIVE.number == CodeEnvRow.active_revision),
    ).outerjoin(_LAST, _LAST.id == _LAST_BUILD_ID)
    query = query.where(visible_to(actor))
    if filters.owner:
        query = query.where(func.lower(CodeEnvRow.owner) == name_key(filters.owner))
    if filters.python:
        query = query.where(CodeEnvRow.spec["python"].as_string() == filters.python)
    if filters.prefix:
        prefix = name_key(filters.prefix)
        query = query.where(CodeEnvRow.name_key.startswith(prefix, autoescape=True))
    if filters.status:
        query = query.where(_status_clause(filters.status))
    return query


def _summary_query(actor: Actor, filters: EnvFilter) -> Select[Any]:
    columns = (
        CodeEnvRow.name,
        CodeEnvRow.owner,
        CodeEnvRow.spec["python"].as_string(),
        CodeEnvRow.active_revision,
        CodeEnvRow.usable_by_all,
        CodeEnvRow.created_at,
        _SPEC_DIFFERS,
        _ACTIVE.size_bytes,
        _ACTIVE.plan["interpreter"].as_string(),
        _granted(actor),
        _LAST_COLUMNS,
    )
    return _filtered(select(*columns), actor, filters)


def _summary(actor: Actor, row: Any) -> EnvSummary:
    name, owner, python, active, usable, created, differs, size, interpreter, granted, last = row
    last_build = BuildInfo.of(last) if last.id is not None else None
    built, spec_differs = active is not None, bool(differs)
    level = level_of(actor, owner, usable, granted)
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
        capabilities=Capabilities.of_level(level),
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
    """The envs the actor may use, one page of `EnvSummary`: 1 query."""
    filters = _checked_filter(filters)
    order = ENV_SORTS.get(choice(sort, tuple(ENV_SORTS), "sort") or "name", ENV_SORTS["name"])
    query = _summary_query(actor, filters).add_columns(*(column for column, _ in order))
    query = paged(query, f"envs{sort}", order, cursor, limit)
    with app.db.session() as session:
        rows = session.execute(query).all()
    width = len(order)
    items = [_summary(actor, row[:-width]) for row in rows]
    return page_of(items, [list(row[-width:]) for row in rows], f"envs{sort}", limit)


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
        _LAST_COLUMNS,
    )
    query = _filtered(select(*columns), actor, filters).options(load_only(*_ENV_COLUMNS))
    if actor.manages_all:  # capabilities need no grants: all of them anyway
        query = query.options(lazyload(CodeEnvRow.grants))
    ordered = [column.desc() if descending else column.asc() for column, descending in order]
    with app.db.session() as session:
        rows = session.execute(query.order_by(*ordered)).all()
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
    env, active_id, active_spec, size, interpreter, last_row = row
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
