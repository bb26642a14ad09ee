"""Plain results services hand to adapters (which never touch the ORM)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

from codenv.domain.secrets import mask_secrets
from codenv.services.actor import FULL, MANAGE_USERS, UPDATE, USE, Actor, env_level
from codenv.storage.models import CodeEnvRow, RevisionRow


def as_utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # as_utc's, without making a datetime per value of a page
        return moment.isoformat(timespec="milliseconds") + "+00:00"
    return moment.isoformat(timespec="milliseconds")


def plain(view: Any) -> dict[str, Any]:
    """A view (a dataclass) as JSON-ready values. Unlike `dataclasses.asdict`, dicts and
    strings are shared, not deep-copied: views are frozen, and a page of envs spent most of
    its time copying specs."""
    kind: type = type(view)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(item.name for item in fields(kind))
    values = [getattr(view, name) for name in names]
    return {
        name: value if type(value) in _AS_IS else _plain_value(value)
        for name, value in zip(names, values, strict=True)
    }


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
# Values kept as they are, by exact type: a page's hundreds of values skip the checks below.
_AS_IS = frozenset({str, int, float, bool, dict, type(None)})


def _plain_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | dict):
        return value
    if isinstance(value, list | tuple):
        return [_plain_value(item) for item in value]
    return plain(value) if is_dataclass(value) else value


class BuildColumns(Protocol):
    """What `BuildInfo.of` reads: a `BuildRow`, or a page's plain columns of one."""

    @property
    def id(self) -> str: ...
    @property
    def env_name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def upgrade_all(self) -> bool: ...
    @property
    def rebuild(self) -> bool: ...
    @property
    def requested_by(self) -> str: ...
    @property
    def revision(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def worker(self) -> str | None: ...
    @property
    def host(self) -> str | None: ...


@dataclass(frozen=True)
class BuildInfo:
    id: str
    env: str
    status: str
    step: str
    upgrade_all: bool
    rebuild: bool
    requested_by: str
    revision: int | None
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    kind: str = "update"  # update | init | import | image
    worker: str | None = None  # who claimed it ("celery@host-a"), on which host
    host: str | None = None

    @classmethod
    def of(cls, row: BuildColumns) -> BuildInfo:
        started, finished = as_utc(row.started_at), as_utc(row.finished_at)
        duration = (finished - started).total_seconds() if started and finished else None
        return cls(
            id=row.id,
            env=row.env_name,
            status=row.status,
            step=row.step,
            upgrade_all=row.upgrade_all,
            rebuild=row.rebuild,
            requested_by=row.requested_by,
            revision=row.revision,
            # A failed step's message may quote a requirement line or an index URL.
            error=mask_secrets(row.error) if row.error else None,
            created_at=_iso(row.created_at),
            started_at=_iso(row.started_at),
            finished_at=_iso(row.finished_at),
            duration_seconds=duration,
            kind=row.kind,
            worker=row.worker,
            host=row.host,
        )

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclass(frozen=True)
class RevisionInfo:
    number: int
    active: bool
    pruned: bool
    build_id: str
    python: str
    plan_hash: str
    packages: int
    size_bytes: int
    created_at: str | None
    # Where an imported revision (a version) came from: {"bundle", "bundle_sha256",
    # "source_env", "source_revision", "source_node", "exported_at", "imported_at",
    # "with_wheels", "offline"}; None: built here.
    origin: dict[str, Any] | None

    @classmethod
    def of(cls, row: RevisionRow, active: int | None) -> RevisionInfo:
        return cls(
            number=row.number,
            active=row.number == active,
            pruned=row.pruned,
            build_id=row.build_id,
            python=row.plan["python_version"],
            plan_hash=row.plan_hash,
            packages=len(row.installed),
            size_bytes=row.size_bytes,
            created_at=_iso(row.created_at),
            origin=dict(row.origin) if row.origin is not None else None,
        )

    @classmethod
    def of_columns(cls, row: Sequence[Any], active: int | None) -> RevisionInfo:
        """From the columns of `queries.revision_columns` (no lock, no installed list)."""
        number, pruned, build_id, python, plan_hash, packages, size, created, origin = row
        return cls(
            number=number,
            active=number == active,
            pruned=pruned,
            build_id=build_id,
            python=python,
            plan_hash=plan_hash,
            packages=packages or 0,
            size_bytes=size,
            created_at=_iso(created),
            origin=dict(origin) if origin is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclass(frozen=True)
class Capabilities:
    """What the caller may do with one env, by the rules of `services.actor`: adapters show
    or hide controls with these and never work the rules out again."""

    may_use: bool
    may_update: bool
    may_manage_users: bool
    may_delete: bool

    @classmethod
    def of(cls, actor: Actor, env: CodeEnvRow) -> Capabilities:
        return cls.of_level(env_level(actor, env))

    @classmethod
    @cache  # frozen: every row of a page at one level shares one
    def of_level(cls, level: int) -> Capabilities:
        return cls(
            may_use=level >= USE,
            may_update=level >= UPDATE,
            may_manage_users=level >= MANAGE_USERS,
            may_delete=level >= FULL,
        )


@dataclass(frozen=True)
class EnvInfo:
    name: str
    owner: str
    status: str
    spec: dict[str, Any]
    base_packages: list[str]
    python: str
    interpreter: str | None
    active_revision: int | None
    spec_differs: bool
    size_bytes: int
    path: str
    created_at: str | None
    last_build: BuildInfo | None
    capabilities: Capabilities
    # `show` only: packages changed by hand in the live env since its revision was built
    # ({"added", "removed", "changed"}); None when not checked or nothing changed.
    drift: dict[str, Any] | None = None
    # `show` only: where a build takes the install and venv options from (`plans.OptionsSource`:
    # {"install", "venv": "node" | "env", "node_wins", "described"}).
    options_source: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclass(frozen=True)
class UpdateResult:
    env: str
    build_id: str | None
    up_to_date: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return plain(self)
