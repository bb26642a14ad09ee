"""The data version: one number that every committed change of a watched table raises.

Server processes keep the answers of some reads with the version they were read at
(services/read_cache.py). Triggers raise it, so no way of writing can forget to: the ORM,
Core statements, the CLI, another server or a worker on another host.

- SQLite: row triggers after every insert, update and delete (writers are serialized by the
  database, so the version's row is never a point of contention there).
- PostgreSQL: a deferred constraint trigger per table, which raises the version once per
  transaction, when it commits. Its row lock is so the last lock a writer takes, after every
  other of its transaction: writers wait for each other only while committing, and never
  deadlock on it.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

TABLE = "data_version"
# Written by every request or heartbeat and read by no cached read: watching them would only
# empty the caches (a token's or session's last use, failed logins, build log chunks,
# workers' and nodes' heartbeats).
UNWATCHED = frozenset(
    {
        "alembic_version",
        TABLE,
        "api_tokens",
        "sessions",
        "login_failures",
        "build_logs",
        "build_log_chunks",
        "workers",
        "nodes",
    }
)
READ = text("SELECT version FROM data_version WHERE id = 1")
# Raised to the clock's microseconds when they are ahead: a version never comes back, even
# after a backup is restored (counting on from the backup's would give numbers that processes
# had kept answers of other data under).
_RAISE = {
    "sqlite": "UPDATE data_version SET version = max(version + 1, "
    "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)) WHERE id = 1",
    "postgresql": "UPDATE data_version SET version = greatest(version + 1, "
    "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint) WHERE id = 1",
}
_PG_FUNCTION = "codenv_raise_data_version"
_PG_TRIGGER = "codenv_data_version"
_SQLITE_EVENTS = ("INSERT", "UPDATE", "DELETE")


def create_version(connection: Connection) -> None:
    """The version's row and, on PostgreSQL, the function its triggers call."""
    connection.execute(text("INSERT INTO data_version (id, version) VALUES (1, 0)"))
    if connection.dialect.name == "postgresql":
        # The flag is the transaction's own (set_config's is_local): raised once per commit.
        connection.execute(
            text(
                f"CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN "
                "IF current_setting('codenv.data_version_raised', true) IS DISTINCT FROM 'yes' "
                "THEN PERFORM set_config('codenv.data_version_raised', 'yes', true); "
                f"{_RAISE['postgresql']}; END IF; RETURN NULL; END $$"
            )
        )


def drop_version(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()"))


def watch(connection: Connection, table: str) -> None:
    """Changes of `table` raise the version (a name of codenv's schema, never user input)."""
    quoted = connection.dialect.identifier_preparer.quote(table)
    if connection.dialect.name == "postgresql":
        connection.execute(
            text(
                f"CREATE CONSTRAINT TRIGGER {_PG_TRIGGER} AFTER INSERT OR UPDATE OR DELETE "
                f"ON {quoted} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                f"EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
        )
        return
    for event in _SQLITE_EVENTS:
        connection.execute(
            text(
                f"CREATE TRIGGER {_sqlite_trigger(table, event)} AFTER {event} ON {quoted} "
                f"BEGIN {_RAISE['sqlite']}; END"
            )
        )


def unwatch(connection: Connection, table: str) -> None:
    quoted = connection.dialect.identifier_preparer.quote(table)
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"DROP TRIGGER IF EXISTS {_PG_TRIGGER} ON {quoted}"))
        return
    for event in _SQLITE_EVENTS:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {_sqlite_trigger(table, event)}"))


def watched_tables(connection: Connection) -> set[str]:
    """The tables whose changes raise the version, as the database says (a test checks that it
    is every table but the unwatched ones)."""
    if connection.dialect.name == "postgresql":
        query = text(
            "SELECT DISTINCT event_object_table FROM information_schema.triggers "
            "WHERE trigger_name = :name AND trigger_schema = current_schema()"
        )
        return {row[0] for row in connection.execute(query, {"name": _PG_TRIGGER})}
    rows = connection.execute(
        text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
    )
    found: dict[str, int] = {}
    for table, name in rows:
        if any(name == _sqlite_trigger(table, event) for event in _SQLITE_EVENTS):
            found[table] = found.get(table, 0) + 1
    return {table for table, count in found.items() if count == len(_SQLITE_EVENTS)}


def _sqlite_trigger(table: str, event: str) -> str:
    return f"codenv_data_version_{table}_{event.lower()}"
