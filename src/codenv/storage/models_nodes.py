"""Who runs and who holds what beyond one host: the execution nodes that follow the database
(`codenv sync`), the revision each holds of each env, and the build workers (`codenv worker`)
with their heartbeat. `codenv status` reads them (services/cluster.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from codenv.storage.models import Base, utcnow


class NodeRow(Base):
    """An execution node: a home of its own on some host, installing each env's active
    revision from its own cache. `poll_seconds` is None for a node synced by `--once` passes."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    # The Python minors it has ("3.11", …): what decides which envs it can hold at all.
    pythons: Mapped[list[Any]] = mapped_column(default=list)
    poll_seconds: Mapped[int | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class NodeRevisionRow(Base):
    """What one node holds of one env: `revision` is its local `current` (None: nothing yet);
    `wanted` the revision its last attempt installed, `state` how that went ("ok", "failed")
    and `error` why it failed (its `current` stays the revision it had)."""

    __tablename__ = "node_revisions"

    node: Mapped[str] = mapped_column(
        String(128), ForeignKey("nodes.name", ondelete="CASCADE"), primary_key=True
    )
    env_id: Mapped[int] = mapped_column(
        ForeignKey("code_envs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    revision: Mapped[int | None]
    wanted: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkerRow(Base):
    """A build worker (`codenv worker`), kept alive by its heartbeat every lease/3: one not
    seen for a lease is dead (killed, or its host lost)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    queues: Mapped[list[Any]] = mapped_column(default=list)
    concurrency: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
