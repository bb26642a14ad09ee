"""Engine, sessions (one unit of work each) and schema migrations."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from codenv.storage import data_version

# The newest migration; checked cheaply at start-up so Alembic is loaded only to upgrade.
SCHEMA_HEAD = "0015"
# Any number, the same in every codenv: PostgreSQL's advisory lock of the migrations.
MIGRATION_LOCK = 0x636F64656E76  # "codenv"
# As many as the server's threads that read at once (anyio's default pool is 40).
SQLITE_POOL_SIZE = 20


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; the timeout makes writers from several
    # processes (CLI, server, workers) wait for each other instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 256 KiB of pages per connection, not SQLite's 2 MB: a server keeps a pool of them and
    # the OS caches the file anyway (2 workers' memory: 275 -> 213 MB at 1,000 envs).
    cursor.execute("PRAGMA cache_size=-256")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # Connections are kept, not closed past a small pool: a new SQLite connection parses
        # the whole schema at its first statement, which cost more than a page's query.
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_POOL_SIZE,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _current_schema(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_schema(engine: Engine) -> None:
    """Run the Alembic migrations up to head (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("codenv.storage").joinpath("migrations"))
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One process migrates a database at a time: servers, workers and nodes started at once
    on a new database would each create its tables, and all but one fail."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                yield
            finally:
                unlock = text("SELECT pg_advisory_unlock(:key)")
                connection.execute(unlock, {"key": MIGRATION_LOCK})
    elif engine.url.database and engine.url.database != ":memory:":
        # A file beside the database, never the database itself: closing another descriptor
        # of it would drop the locks SQLite holds on it in this process.
        with open(f"{engine.url.database}.migrating", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    else:
        yield


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        if _current_schema(self.engine) == SCHEMA_HEAD:
            return
        with _migration_lock(self.engine):
            if _current_schema(self.engine) != SCHEMA_HEAD:  # not done meanwhile by another
                upgrade_schema(self.engine)

    def data_version(self) -> int:
        """The number every committed change of the data raises (storage/data_version.py)."""
        with self.engine.connect() as connection:
            return int(connection.execute(data_version.READ).scalar_one())

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """One unit of work of plain statements, without an ORM session (~0.1 ms less): for
        what every request runs to find its caller (storage/holders.py)."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
