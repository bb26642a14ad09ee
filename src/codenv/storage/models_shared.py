"""State that several servers on one database share: build logs, the node's settings and the
version of the data that their read caches check.

A build's log is written where the build runs (a file subprocesses write into) and copied
here in chunks, so that any server streams any build; a log with no row here is an old one,
read from its file (services/log_store.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from codenv.storage.models import Base, utcnow


class BuildLogRow(Base):
    """A build's log: its length in bytes (the offset the next chunk starts at) and whether
    its writer closed it (until then a finished build's reader waits for the tail)."""

    __tablename__ = "build_logs"

    build_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("builds.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    closed: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BuildLogChunkRow(Base):
    """Bytes `[start, start + len(data))` of a build's log; whole UTF-8 characters."""

    __tablename__ = "build_log_chunks"

    build_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("build_logs.build_id", ondelete="CASCADE"), primary_key=True
    )
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class NodeSettingRow(Base):
    """One setting administrators change while codenv runs (`nodeType`,
    `codeEnvsSettings.allowRequests`, …), as the seed system's `config/server.json` names it."""

    __tablename__ = "node_settings"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DataVersionRow(Base):
    """One row whose `version` every committed change of a watched table raises (triggers made
    by migration 0014, `storage/data_version.py`): a read cached at one version is the answer
    of every later read made while the version is the same, in any process."""

    __tablename__ = "data_version"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
