"""SQLAlchemy 2 models: code envs, revisions, builds, build slots, configured interpreters;
users, groups, API tokens, browser sessions, env grants, code env requests, the audit log;
container configs and images."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from codenv.storage.indexed import spec_python


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class CodeEnvRow(Base):
    __tablename__ = "code_envs"
    # The list's sorts and filters (services/listing.py); by name: the unique name_key.
    __table_args__ = (
        Index("ix_code_envs_owner_name", "owner", "name_key"),
        Index("ix_code_envs_owner_key", func.lower(text("owner"))),
        Index("ix_code_envs_created", "created_at", "id"),
        Index("ix_code_envs_python", spec_python(text("spec"))),
        Index(
            "ix_code_envs_name_prefix",
            "name_key",
            postgresql_ops={"name_key": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(128))
    spec: Mapped[dict[str, Any]]
    active_revision: Mapped[int | None]
    usable_by_all: Mapped[bool] = mapped_column(default=False, server_default=false())
    # False from the commit that changes the active revision until the disk agrees with it
    # (link, env vars, kernelspec, pruning): start-up reconciliation settles what is left.
    settled: Mapped[bool] = mapped_column(default=True, server_default=true(), index=True)
    # Containerized execution: {"mode": none|all|selected, "configs": [...], "resources": ...}.
    containers: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    revisions: Mapped[list[RevisionRow]] = relationship(
        back_populates="env", cascade="all, delete-orphan", order_by="RevisionRow.number"
    )
    # Loaded with the env: every permission check needs them.
    grants: Mapped[list[EnvGrantRow]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", passive_deletes=True
    )


class RevisionRow(Base):
    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("env_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    env_id: Mapped[int] = mapped_column(ForeignKey("code_envs.id", ondelete="CASCADE"))
    number: Mapped[int]
    build_id: Mapped[str] = mapped_column(String(32))
    plan: Mapped[dict[str, Any]]
    plan_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]]
    lock: Mapped[str] = mapped_column(Text)
    installed: Mapped[list[Any]]
    # What the install check reported that does not break the env (tags, platform).
    warnings: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'"))
    # Where an imported revision came from (bundle file, digest, source revision); None: built here.
    origin: Mapped[dict[str, Any] | None]
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pruned: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    env: Mapped[CodeEnvRow] = relationship(back_populates="revisions")


class BuildRow(Base):
    __tablename__ = "builds"
    __table_args__ = (
        Index("ix_builds_env_status", "env_id", "status"),
        # An env's builds newest first, and the last one of every env on a page of the list.
        Index("ix_builds_env_created", "env_id", "created_at", "id"),
        Index("ix_builds_env_kind", "env_id", "kind"),
        # The reaper's look at claimed builds, and the sweep's at builds ended lately.
        Index("ix_builds_status_lease", "status", "lease_expires_at"),
        Index("ix_builds_finished", "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    env_id: Mapped[int | None] = mapped_column(ForeignKey("code_envs.id", ondelete="SET NULL"))
    env_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="update", server_default="update")
    step: Mapped[str] = mapped_column(String(32), default="queued")
    upgrade_all: Mapped[bool] = mapped_column(default=False)
    rebuild: Mapped[bool] = mapped_column(default=False)
    requested_by: Mapped[str] = mapped_column(String(128))
    # The process (`host:pid:start`, jobs/liveness.py) whose memory holds the queued build (an
    # in-process queue; "" in a broker) and then the one that claimed it.
    holder: Mapped[str] = mapped_column(String(256), default="")
    # Who claimed it ("celery@host-a"), where, and until when unless renewed: NULL while queued
    # unclaimed and once it ended (services/leases.py).
    worker: Mapped[str | None] = mapped_column(String(128))
    host: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    revision: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class BuildSlotRow(Base):
    """The env's build slot: at most one row per env, the build (or rollback) that holds it.
    Survives process death by design; held under a lease its holder renews, and released by
    the reaper once the lease expired (services/leases.py)."""

    __tablename__ = "build_slots"

    env_id: Mapped[int] = mapped_column(
        ForeignKey("code_envs.id", ondelete="CASCADE"), primary_key=True
    )
    build_id: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str] = mapped_column(String(256))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime]


class InterpreterRow(Base):
    """An interpreter an administrator added by path."""

    __tablename__ = "interpreters"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(256), default="")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[MembershipRow]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class GroupRow(Base):
    """A group and the global rights it grants its members."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(512), default="")
    administrator: Mapped[bool] = mapped_column(default=False)
    may_create_envs: Mapped[bool] = mapped_column(default=False)
    may_manage_all_envs: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[MembershipRow]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True
    )


class MembershipRow(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    group: Mapped[GroupRow] = relationship(back_populates="memberships", lazy="joined")
    user: Mapped[UserRow] = relationship(back_populates="memberships", lazy="joined")


class ApiTokenRow(Base):
    """An API token: only the SHA-256 of its secret is kept, and a prefix to recognise it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[UserRow] = relationship(lazy="joined")


class LoginFailureRow(Base):
    """Failed password logins per user name and source, to slow guessing down."""

    __tablename__ = "login_failures"

    name_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(default=utcnow)
    blocked_until: Mapped[datetime | None]


class SessionRow(Base):
    """A browser session: the cookie holds a random secret, the row only its SHA-256."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(128), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")

    user: Mapped[UserRow] = relationship(lazy="joined")


class EnvGrantRow(Base):
    """A group's right on one env: use, update or manage_users (each includes the ones before)."""

    __tablename__ = "env_grants"

    env_id: Mapped[int] = mapped_column(
        ForeignKey("code_envs.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    level: Mapped[str] = mapped_column(String(16))

    group: Mapped[GroupRow] = relationship(lazy="joined")


class EnvRequestRow(Base):
    """A user's request for a new code env, approved or rejected by an administrator."""

    __tablename__ = "env_requests"
    __table_args__ = (Index("ix_env_requests_status", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # The name's key while the request is pending, NULL once decided: at most one pending
    # request per name, enforced by the database.
    pending_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    requester: Mapped[str] = mapped_column(String(128), index=True)
    spec: Mapped[dict[str, Any]]
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None]
    build_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditRow(Base):
    """One change: who, what, on what, when, from where. Never holds a secret."""

    __tablename__ = "audit_log"
    # The log's filters, each newest first (by id).
    __table_args__ = (
        Index("ix_audit_log_action", "action", "id"),
        Index("ix_audit_log_target", "target", "id"),
        Index("ix_audit_log_actor", "actor", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256), default="")
    details: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(128), default="")


class ContainerConfigRow(Base):
    """A container config: a base image, the registry images are pushed to, the env's path
    in the image. The registry password is a secret: used, never shown."""

    __tablename__ = "container_configs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    base: Mapped[str] = mapped_column(String(512))
    registry_host: Mapped[str] = mapped_column(String(256))
    repository: Mapped[str] = mapped_column(String(256), default="")
    insecure: Mapped[bool] = mapped_column(default=False)
    env: Mapped[list[Any]] = mapped_column(default=list)
    env_path: Mapped[str] = mapped_column(String(256))
    username: Mapped[str] = mapped_column(String(256), default="")
    password: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImageRow(Base):
    """The image of one revision of an env for one container config. Its build is a build of
    kind `image`; once pushed it has a digest. `deleting`: to be deleted from the registry
    (its revision was pruned or its env deleted), kept until the registry agreed."""

    __tablename__ = "images"
    __table_args__ = (Index("ix_images_env_revision", "env_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    env_id: Mapped[int | None] = mapped_column(ForeignKey("code_envs.id", ondelete="SET NULL"))
    env_name: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int]
    config: Mapped[str] = mapped_column(String(64))
    registry_host: Mapped[str] = mapped_column(String(256))
    repository: Mapped[str] = mapped_column(String(512))
    tag: Mapped[str] = mapped_column(String(128))
    build_id: Mapped[str] = mapped_column(String(32), index=True)
    digest: Mapped[str | None] = mapped_column(String(80))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pushed_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # The digests of its layers: where to mount a layer from when another env pushes it.
    layer_digests: Mapped[list[Any]] = mapped_column(default=list)
    deleting: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DssFutureRow(Base):
    """A future of the DSS API (its `jobId`): one that follows a build (`build_id`), or an
    operation that finished at once, with its `result` stored. Kept for a day, so a client
    polls it repeatedly; in the database because several server processes may answer."""

    __tablename__ = "dss_futures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128))
    build_id: Mapped[str | None] = mapped_column(String(32))
    result: Mapped[dict[str, Any] | None]
    owner: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# The tables of other topics, in modules of their own, on Base.metadata: nodes and workers;
# build logs and node settings.
from codenv.storage import models_nodes, models_shared  # noqa: E402, F401
