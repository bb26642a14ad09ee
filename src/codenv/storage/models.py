"""SQLAlchemy 2 models: code envs, revisions, builds, env locks, configured interpreters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(128))
    spec: Mapped[dict[str, Any]]
    active_revision: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    revisions: Mapped[list[RevisionRow]] = relationship(
        back_populates="env", cascade="all, delete-orphan", order_by="RevisionRow.number"
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
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pruned: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    env: Mapped[CodeEnvRow] = relationship(back_populates="revisions")


class BuildRow(Base):
    __tablename__ = "builds"
    __table_args__ = (Index("ix_builds_env_status", "env_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    env_id: Mapped[int | None] = mapped_column(ForeignKey("code_envs.id", ondelete="SET NULL"))
    env_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="update", server_default="update")
    step: Mapped[str] = mapped_column(String(32), default="queued")
    upgrade_all: Mapped[bool] = mapped_column(default=False)
    rebuild: Mapped[bool] = mapped_column(default=False)
    requested_by: Mapped[str] = mapped_column(String(128))
    holder: Mapped[str] = mapped_column(String(256), default="")
    revision: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class EnvLockRow(Base):
    """At most one row per env: the build that holds it. Survives process death by design;
    a holder whose process is gone is detected and released by recovery."""

    __tablename__ = "env_locks"

    env_id: Mapped[int] = mapped_column(
        ForeignKey("code_envs.id", ondelete="CASCADE"), primary_key=True
    )
    build_id: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str] = mapped_column(String(256))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)


class InterpreterRow(Base):
    """An interpreter an administrator added by path."""

    __tablename__ = "interpreters"

    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
