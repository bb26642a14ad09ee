"""Build logs in the database, so that any server streams any build.

The process running a build writes its log to a local file (`BuildLog`; subprocesses write
into it too), and a shipper thread copies the bytes appended to it into `build_log_chunks`
every SHIP_INTERVAL seconds and when the log is closed. What reaches the file is masked
already (`BuildLog.write` masks every line, subprocess output included), so the database
holds nothing the file does not. Offsets are byte offsets into the log, as in the file.

A build with no `build_logs` row logged before logs were stored here: its file is read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from codenv.builds.logs import BuildLog, decode_chunk, read_from, whole_characters
from codenv.services.app import Codenv
from codenv.services.builds import log_path
from codenv.services.views import as_utc
from codenv.storage.db import Database
from codenv.storage.models import utcnow
from codenv.storage.models_shared import BuildLogChunkRow, BuildLogRow

logger = logging.getLogger(__name__)
SHIP_INTERVAL = 0.5
# One chunk row holds at most this much (a burst of output goes in several rows).
MAX_CHUNK_BYTES = 256 * 1024
# How long a reader of a finished build waits for its writer's last chunk; past it, a log
# that did not grow is taken as closed (its writer died before closing it).
SETTLE_SECONDS = 3.0
SETTLE_POLL = 0.1


@dataclass(frozen=True)
class LogState:
    size: int
    closed: bool
    modified_ms: int


def open_build_log(app: Codenv, build_id: str) -> BuildLog:
    """The build's log, for the process running (or failing) the build."""
    return ShippedLog(app.db, build_id, log_path(app, build_id))


class ShippedLog(BuildLog):
    """A build log whose appended bytes are copied into the database as they come."""

    def __init__(self, db: Database, build_id: str, path: Path) -> None:
        try:
            before = path.stat().st_size
        except FileNotFoundError:
            before = 0
        super().__init__(path)
        self._shipper = _Shipper(db, build_id, path, before)
        self._shipper.start()

    def close(self) -> None:
        super().close()
        self._shipper.finish()


class _Shipper:
    """Copies a log file's new bytes into the database, from a thread of its own."""

    def __init__(self, db: Database, build_id: str, path: Path, before: int) -> None:
        self._db, self._build_id = db, build_id
        self._source = path.open("rb")
        self._before = before
        self._positioned = False
        self._pending = b""
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"log-shipper-{build_id[:8]}", daemon=True
        )

    def start(self) -> None:
        """The log's row at once, so that readers know to wait for its chunks; then copies."""
        try:
            self._position()
        except SQLAlchemyError as error:
            logger.warning("build %s: log not in the database yet: %s", self._build_id, error)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(SHIP_INTERVAL):
            self._ship(final=False)

    def finish(self) -> None:
        """Ship the rest and mark the log closed (once, in the closing thread)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._thread.join()
        self._ship(final=True)
        self._source.close()

    def _position(self) -> None:
        """Where shipping starts in the file: its end as the log was opened, unless the file
        holds bytes the database lacks (this host's writer died before shipping them)."""
        stored = _open_header(self._db, self._build_id)
        self._source.seek(stored if self._before >= stored else self._before)
        self._positioned = True

    def _ship(self, *, final: bool) -> None:
        try:
            if not self._positioned:
                self._position()
            self._pending += self._source.read()
            # A character the writer is halfway through goes with the next chunk.
            ready = len(self._pending) if final else whole_characters(self._pending)
            while ready > 0:
                size = whole_characters(self._pending[: min(ready, MAX_CHUNK_BYTES)])
                size = size or min(ready, MAX_CHUNK_BYTES)
                _append(self._db, self._build_id, self._pending[:size])
                self._pending, ready = self._pending[size:], ready - size
            if final:
                _close(self._db, self._build_id)
        except (OSError, SQLAlchemyError) as error:
            # Kept for the next tick: the build goes on, its file has every byte.
            logger.warning(
                "build %s: log not copied to the database yet: %s", self._build_id, error
            )


def _open_header(db: Database, build_id: str) -> int:
    """The log's row, created if missing and marked open; its size."""
    try:
        return _open_header_once(db, build_id)
    except IntegrityError:
        # Another writer (a recovery elsewhere) created it meanwhile; a build that does not
        # exist fails again here.
        return _open_header_once(db, build_id)


def _open_header_once(db: Database, build_id: str) -> int:
    with db.session() as session:
        row = session.get(BuildLogRow, build_id)
        if row is None:
            session.add(BuildLogRow(build_id=build_id, size=0, closed=False))
            return 0
        row.closed = False
        return row.size


def _append(db: Database, build_id: str, data: bytes) -> None:
    """One chunk at the log's end: the size bump locks the row, so writers never overlap."""
    with db.session() as session:
        grown = (
            update(BuildLogRow)
            .where(BuildLogRow.build_id == build_id)
            .values(size=BuildLogRow.size + len(data), updated_at=utcnow())
            .returning(BuildLogRow.size)
        )
        end = session.execute(grown, execution_options={"synchronize_session": False}).scalar_one()
        session.add(BuildLogChunkRow(build_id=build_id, start=end - len(data), data=data))


def _close(db: Database, build_id: str) -> None:
    with db.session() as session:
        session.execute(
            update(BuildLogRow).where(BuildLogRow.build_id == build_id).values(closed=True),
            execution_options={"synchronize_session": False},
        )


def log_state(db: Database, build_id: str) -> LogState | None:
    """The log's size and state; None when the build logged to a file only (or not yet)."""
    return log_states(db, [build_id]).get(build_id)


def read_log_text(
    app: Codenv, build_id: str, offset: int, limit: int, *, finished: bool
) -> tuple[str, int]:
    """The log's text from `offset` (at most `limit` bytes), and the offset after it.

    Of a `finished` build, the whole tail: its writer's last chunk is waited for."""
    state = log_state(app.db, build_id)
    if state is None:
        return read_from(log_path(app, build_id), offset, limit)
    if finished and not state.closed:
        state = _settled(app.db, build_id, state)
    if offset >= state.size:
        return "", offset
    return decode_chunk(_read_bytes(app.db, build_id, offset, limit), offset, limit)


def _settled(db: Database, build_id: str, state: LogState) -> LogState:
    deadline = time.monotonic() + SETTLE_SECONDS
    current: LogState | None = state
    while current is not None and not current.closed and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL)
        current = log_state(db, build_id)
    if current is None:
        return state
    if not current.closed and current.size == state.size:
        # Its writer is gone: the next readers need not wait again.
        _close(db, build_id)
    return current


def _read_bytes(db: Database, build_id: str, offset: int, limit: int) -> bytes:
    with db.session() as session:
        first = session.scalar(
            select(func.max(BuildLogChunkRow.start)).where(
                BuildLogChunkRow.build_id == build_id, BuildLogChunkRow.start <= offset
            )
        )
        chunks = session.execute(
            select(BuildLogChunkRow.start, BuildLogChunkRow.data)
            .where(BuildLogChunkRow.build_id == build_id, BuildLogChunkRow.start >= (first or 0))
            .order_by(BuildLogChunkRow.start)
            .execution_options(yield_per=64)
        )
        parts, total = [], 0
        for start, data in chunks:
            piece = data[max(0, offset - start) :]
            parts.append(piece)
            total += len(piece)
            if 0 < limit <= total:
                break
    joined = b"".join(parts)
    return joined[:limit] if limit > 0 else joined


def log_states(db: Database, build_ids: list[str]) -> dict[str, LogState]:
    """The stored logs among `build_ids` (one query)."""
    with db.session() as session:
        rows = session.scalars(select(BuildLogRow).where(BuildLogRow.build_id.in_(build_ids)))
        return {row.build_id: _state(row) for row in rows}


def _state(row: BuildLogRow) -> LogState:
    modified = as_utc(row.updated_at) or datetime.now(UTC)
    return LogState(row.size, row.closed, int(modified.timestamp() * 1000))
