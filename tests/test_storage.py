"""Storage against real databases: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

import codenv.storage.db as db_module
from codenv.domain.errors import NotFound
from codenv.domain.names import name_key
from codenv.jobs.liveness import holder_gone, holder_token
from codenv.services.views import as_utc
from codenv.storage import queries
from codenv.storage.db import SCHEMA_HEAD, Database
from codenv.storage.models import (
    Base,
    BuildRow,
    BuildSlotRow,
    CodeEnvRow,
    RevisionRow,
    utcnow,
)
from support.databases import database_url  # noqa: F401

TABLES = {
    "alembic_version",
    "code_envs",
    "revisions",
    "builds",
    "build_slots",
    "interpreters",
    "users",
    "groups",
    "group_members",
    "api_tokens",
    "login_failures",
    "sessions",
    "env_grants",
    "env_requests",
    "audit_log",
    "container_configs",
    "images",
    "dss_futures",
    "build_logs",
    "build_log_chunks",
    "node_settings",
    "nodes",
    "node_revisions",
    "workers",
    "data_version",
}
SUBPROCESS_TIMEOUT = 60
LEASE_END = datetime(2999, 1, 1, tzinfo=UTC)  # slots held here are never judged expired


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:  # noqa: F811
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def add_env(db: Database, name: str, spec: dict[str, Any] | None = None) -> int:
    with db.session() as session:
        env = CodeEnvRow(name=name, name_key=name_key(name), owner="alice", spec=spec or {})
        session.add(env)
        session.flush()
        return env.id


def revision_row(env_id: int, number: int, size_bytes: int = 0) -> RevisionRow:
    return RevisionRow(
        env_id=env_id,
        number=number,
        build_id=f"build-{env_id}-{number}",
        plan={"python_version": "3.12"},
        plan_hash="0" * 64,
        spec={"python": "3.12"},
        lock="alpha==1.0\n",
        installed=[{"name": "alpha", "version": "1.0"}],
        size_bytes=size_bytes,
    )


def build_row(
    build_id: str, env_id: int, status: str = "queued", created_at: datetime | None = None
) -> BuildRow:
    row = BuildRow(
        id=build_id, env_id=env_id, env_name=f"env-{env_id}", status=status, requested_by="alice"
    )
    if created_at is not None:
        row.created_at = created_at
    return row


def version_rows(db: Database) -> list[str]:
    with db.engine.connect() as connection:
        return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def run_python(code: str, *args: str) -> str:
    """Run `code` in a new interpreter (another process, same venv); return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- schema -------------------------------------------------------------------------------


def test_migrate_creates_schema_from_nothing_and_is_idempotent(
    database_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = Database(database_url)
    try:
        assert inspect(db.engine).get_table_names() == []
        db.migrate()
        assert set(inspect(db.engine).get_table_names()) == TABLES
        assert version_rows(db) == [SCHEMA_HEAD]
        # The migrations build exactly what the models describe.
        with db.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []

        def must_not_upgrade(_engine: object) -> None:
            raise AssertionError("migrate() ran the migrations on a schema already at head")

        monkeypatch.setattr(db_module, "upgrade_schema", must_not_upgrade)
        db.migrate()
        Database(database_url).migrate()  # a second process/start-up on the same database
        assert version_rows(db) == [SCHEMA_HEAD]
    finally:
        db.dispose()


def test_processes_started_together_on_a_new_database_all_start(
    database_url: str,  # noqa: F811
) -> None:
    # Servers, workers and nodes started at once: one migrates, the others wait, none fails.
    code = "import sys\nfrom codenv.storage.db import Database\nDatabase(sys.argv[1]).migrate()\n"
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url], env=environ, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    errors = [process.communicate(timeout=120)[1].decode() for process in starting]
    assert [process.returncode for process in starting] == [0] * 4, errors
    db = Database(database_url)
    try:
        assert version_rows(db) == [SCHEMA_HEAD]
        assert set(inspect(db.engine).get_table_names()) == TABLES
    finally:
        db.dispose()


def test_migrate_at_head_does_not_load_alembic(db: Database) -> None:
    assert version_rows(db) == [SCHEMA_HEAD]
    loaded = run_python(
        "import sys\n"
        "from codenv.storage.db import Database\n"
        "database = Database(sys.argv[1])\n"
        "database.migrate()\n"
        "database.dispose()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))\n",
        db.url,
    )
    assert loaded == "[]"
    assert version_rows(db) == [SCHEMA_HEAD]


# --- code envs ----------------------------------------------------------------------------


def test_env_round_trip_with_json_spec_and_utc_times(db: Database) -> None:
    spec: dict[str, Any] = {
        "python": "3.12",
        "options": {"core_package": True, "jupyter": False},
        "package_sets": ["scientific", "plotting"],
        "requested": "numpy>=2\n# café ✓\n-e /srv/local pkg\n",
        "ratio": 0.25,
        "nothing": None,
        "nested": [{"a": [1, 2, {"b": None}]}, []],
    }
    before = utcnow()
    env_id = add_env(db, "Round-Trip", spec)
    after = utcnow()

    with db.session() as session:
        env = session.get(CodeEnvRow, env_id)
        assert env is not None
        assert (env.name, env.name_key, env.owner) == ("Round-Trip", "round-trip", "alice")
        assert env.spec == spec
        assert env.active_revision is None
        created = as_utc(env.created_at)
        assert created is not None
        assert created.utcoffset() == timedelta(0)
        assert before <= created <= after
        assert timedelta(0) <= utcnow() - created < timedelta(minutes=1)
        first_update = as_utc(env.updated_at)
        assert first_update is not None
        assert before <= first_update <= after

        env.spec = {**spec, "python": "3.13"}
        env.active_revision = 1

    with db.session() as session:
        env = session.get(CodeEnvRow, env_id)
        assert env is not None
        assert env.spec["python"] == "3.13"
        assert env.active_revision == 1
        updated = as_utc(env.updated_at)
        assert updated is not None
        assert as_utc(env.created_at) == created
        assert first_update < updated <= utcnow()

    moment = datetime(2024, 5, 17, 12, 30, 15, 123456, tzinfo=UTC)
    with db.session() as session:
        build = build_row("timed", env_id, "succeeded", created_at=moment)
        build.started_at = moment + timedelta(seconds=1)
        build.finished_at = moment + timedelta(minutes=2)
        session.add(build)
    with db.session() as session:
        build = session.get_one(BuildRow, "timed")
        assert as_utc(build.created_at) == moment
        assert as_utc(build.started_at) == moment + timedelta(seconds=1)
        assert as_utc(build.finished_at) == moment + timedelta(minutes=2)


def test_names_are_unique_case_insensitively(db: Database) -> None:
    env_id = add_env(db, "Foo")
    with pytest.raises(IntegrityError):
        add_env(db, "foo")
    with pytest.raises(IntegrityError):
        add_env(db, "FOO")

    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(CodeEnvRow)) == 1
        for spelling in ("Foo", "foo", "FOO", "fOo"):
            found = queries.env_by_name(session, spelling)
            assert found is not None
            assert (found.id, found.name) == (env_id, "Foo")
            assert queries.require_env(session, spelling).id == env_id
        assert queries.env_by_name(session, "bar") is None
        with pytest.raises(NotFound) as raised:
            queries.require_env(session, "bar")
        assert raised.value.field == "name"
        assert raised.value.code == "not_found"
        assert "bar" in raised.value.message

    add_env(db, "bar")
    with db.session() as session:
        assert [env.name for env in queries.all_envs(session)] == ["bar", "Foo"]


# --- revisions and deletion ---------------------------------------------------------------


def test_revisions_are_unique_per_env_and_number(db: Database) -> None:
    first, second, empty = add_env(db, "first"), add_env(db, "second"), add_env(db, "empty")
    with db.session() as session:
        session.add_all([revision_row(first, 1), revision_row(second, 1)])
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(revision_row(first, 1))

    with db.session() as session:
        session.add(revision_row(first, 3))
    with db.session() as session:
        assert queries.next_revision_number(session, empty) == 1
        assert queries.next_revision_number(session, second) == 2
        assert queries.next_revision_number(session, first) == 4
        found = queries.revision(session, first, 3)
        assert found is not None
        assert (found.env_id, found.number) == (first, 3)
        assert queries.revision(session, first, 2) is None
        env = session.get_one(CodeEnvRow, first)
        assert [row.number for row in env.revisions] == [1, 3]


@pytest.mark.parametrize("how", ["orm", "sql"])
def test_deleting_an_env_cascades_but_keeps_build_history(db: Database, how: str) -> None:
    doomed, kept = add_env(db, "doomed"), add_env(db, "kept")
    with db.session() as session:
        session.add_all([revision_row(doomed, 1), revision_row(doomed, 2), revision_row(kept, 1)])
        session.add_all([build_row("old", doomed, "succeeded"), build_row("other", kept)])
    assert queries.take_build_slot(db, doomed, "old", "holder", LEASE_END)
    assert queries.take_build_slot(db, kept, "other", "holder", LEASE_END)

    with db.session() as session:
        if how == "orm":  # as services.envs.delete_env does
            session.delete(session.get_one(CodeEnvRow, doomed))
        else:  # the database's own foreign keys (SQLite needs PRAGMA foreign_keys=ON)
            session.execute(delete(CodeEnvRow).where(CodeEnvRow.id == doomed))

    with db.session() as session:
        assert session.get(CodeEnvRow, doomed) is None
        assert queries.env_by_name(session, "doomed") is None
        remaining = session.execute(select(RevisionRow.env_id, RevisionRow.number)).all()
        assert [tuple(row) for row in remaining] == [(kept, 1)]
        assert queries.build_slot(session, doomed) is None
        assert session.scalars(select(BuildSlotRow.env_id)).all() == [kept]
        history = session.get_one(BuildRow, "old")
        assert history.env_id is None
        assert (history.env_name, history.status) == (f"env-{doomed}", "succeeded")
        assert session.get_one(BuildRow, "other").env_id == kept


# --- build slots ---------------------------------------------------------------------------


def test_build_slot_is_taken_once_until_released(db: Database) -> None:
    env_id, other_env = add_env(db, "locked"), add_env(db, "other")
    assert queries.take_build_slot(db, env_id, "b1", "holder-1", LEASE_END)
    assert not queries.take_build_slot(db, env_id, "b2", "holder-2", LEASE_END)
    assert not queries.take_build_slot(db, env_id, "b1", "holder-1", LEASE_END)  # not re-entrant
    assert queries.take_build_slot(db, other_env, "b3", "holder-2", LEASE_END)  # locks are per env

    with db.session() as session:
        lock = queries.build_slot(session, env_id)
        assert lock is not None
        assert (lock.build_id, lock.holder) == ("b1", "holder-1")
        acquired = as_utc(lock.acquired_at)
        assert acquired is not None
        assert timedelta(0) <= utcnow() - acquired < timedelta(minutes=1)
        queries.release_build_slot(session, "b2")  # not the holder: changes nothing
    assert not queries.take_build_slot(db, env_id, "b2", "holder-2", LEASE_END)

    with db.session() as session:
        queries.release_build_slot(session, "b1")
    assert queries.take_build_slot(db, env_id, "b2", "holder-2", LEASE_END)
    with db.session() as session:
        lock = queries.build_slot(session, env_id)
        assert lock is not None
        assert (lock.build_id, lock.holder) == ("b2", "holder-2")
        other = queries.build_slot(session, other_env)
        assert other is not None
        assert other.build_id == "b3"


def test_build_slot_of_a_deleted_env_is_not_found(db: Database) -> None:
    """A build polling for the lock of an env deleted meanwhile must stop, not wait forever."""
    env_id = add_env(db, "gone")
    with db.session() as session:
        session.delete(session.get_one(CodeEnvRow, env_id))
    with pytest.raises(NotFound):
        queries.take_build_slot(db, env_id, "late", "holder", LEASE_END)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(BuildSlotRow)) == 0


def race_for_lock(db: Database, env_id: int, build_ids: list[str]) -> dict[str, bool]:
    """Every build tries to take the env's lock at the same moment, each from its own thread."""
    barrier = threading.Barrier(len(build_ids))
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def contend(build_id: str) -> None:
        try:
            barrier.wait(timeout=30)
            results[build_id] = queries.take_build_slot(
                db, env_id, build_id, f"h-{build_id}", LEASE_END
            )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=contend, args=(build_id,)) for build_id in build_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_build_slot_has_one_winner_among_racing_threads(db: Database) -> None:
    env_id = add_env(db, "raced")
    for attempt in range(5):
        build_ids = [f"r{attempt}-t{index}" for index in range(8)]
        results = race_for_lock(db, env_id, build_ids)
        assert sorted(results) == sorted(build_ids)
        winners = [build_id for build_id, won in results.items() if won]
        assert len(winners) == 1, results

        with db.session() as session:
            lock = queries.build_slot(session, env_id)
            assert lock is not None
            assert lock.build_id == winners[0]
            queries.release_build_slot(session, winners[0])


TRY_LOCKS_IN_SUBPROCESS = """
import sys
from datetime import UTC, datetime
from codenv.jobs.liveness import holder_token
from codenv.storage import queries
from codenv.storage.db import Database

url, held_env, free_env = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
database = Database(url)
end = datetime(2999, 1, 1, tzinfo=UTC)
print(queries.take_build_slot(database, held_env, "child-held", holder_token(), end))
print(queries.take_build_slot(database, free_env, "child-free", holder_token(), end))
print(holder_token())
database.dispose()
"""


def test_build_slot_holds_across_processes(db: Database) -> None:
    held, free = add_env(db, "held"), add_env(db, "free")
    assert queries.take_build_slot(db, held, "parent", holder_token(), LEASE_END)

    on_held, on_free, child_token = run_python(
        TRY_LOCKS_IN_SUBPROCESS, db.url, str(held), str(free)
    ).splitlines()

    assert on_held == "False"
    assert on_free == "True"  # the child could write: False above was the lock, not an error
    assert child_token != holder_token()
    with db.session() as session:
        parents = queries.build_slot(session, held)
        childs = queries.build_slot(session, free)
        assert parents is not None
        assert childs is not None
        assert (parents.build_id, parents.holder) == ("parent", holder_token())
        assert (childs.build_id, childs.holder) == ("child-free", child_token)
        # What recovery decides from the stored tokens: the child has exited, we have not.
        assert not holder_gone(parents.holder)
        assert holder_gone(childs.holder)


# --- builds -------------------------------------------------------------------------------


def test_unfinished_builds_and_build_history_order(db: Database) -> None:
    env_id, other, quiet = add_env(db, "busy"), add_env(db, "other"), add_env(db, "quiet")
    start = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
    with db.session() as session:
        # Inserted out of order: the order must come from created_at, not from the ids.
        session.add_all(
            [
                build_row("mid", env_id, "failed", start + timedelta(minutes=1)),
                build_row("new", env_id, "running", start + timedelta(minutes=2)),
                build_row("old", env_id, "succeeded", start),
                build_row("cancelled", env_id, "cancelled", start - timedelta(days=1)),
                build_row("waiting", other, "queued", start),
            ]
        )

    with db.session() as session:
        assert {build.id for build in queries.unfinished_builds(session)} == {"new", "waiting"}
        assert [build.id for build in queries.builds_of(session, env_id)] == [
            "new",
            "mid",
            "old",
            "cancelled",
        ]
        assert [build.id for build in queries.builds_of(session, env_id, limit=2)] == [
            "new",
            "mid",
        ]
        assert [build.id for build in queries.builds_of(session, other)] == ["waiting"]
        assert queries.builds_of(session, quiet) == []
        last = queries.last_build(session, env_id)
        assert last is not None
        assert last.id == "new"
        assert queries.last_build(session, quiet) is None

    # Builds created one after another with the default timestamps, as services create them.
    for index in range(3):
        with db.session() as session:
            session.add(build_row(f"q{index}", quiet, "succeeded"))
    with db.session() as session:
        assert [build.id for build in queries.builds_of(session, quiet)] == ["q2", "q1", "q0"]
        last = queries.last_build(session, quiet)
        assert last is not None
        assert last.id == "q2"
        assert {build.id for build in queries.unfinished_builds(session)} == {"new", "waiting"}


def test_size_bytes_beyond_32_bits(db: Database) -> None:
    env_id = add_env(db, "huge")
    big = 5 * 2**40 + 123  # above 2**31 and 2**32
    with db.session() as session:
        session.add_all([revision_row(env_id, 1, size_bytes=big), revision_row(env_id, 2)])

    with db.session() as session:
        found = queries.revision(session, env_id, 1)
        assert found is not None
        assert found.size_bytes == big
        assert session.scalar(select(func.sum(RevisionRow.size_bytes))) == big
        assert session.scalars(
            select(RevisionRow.number).where(RevisionRow.size_bytes > 2**31)
        ).all() == [1]
    column = next(
        column
        for column in inspect(db.engine).get_columns("revisions")
        if column["name"] == "size_bytes"
    )
    if db.engine.dialect.name == "postgresql":
        assert str(column["type"]) == "BIGINT"


# --- holder liveness ----------------------------------------------------------------------


def test_holder_tokens_and_liveness(db: Database) -> None:
    own = holder_token()
    host, pid, started = own.rsplit(":", 2)
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert started.isdigit()
    assert not holder_gone(own)
    # Same pid, other start time: the pid was reused by a new process; the holder is gone.
    assert holder_gone(f"{host}:{pid}:{int(started) + 1}")

    finished = run_python("from codenv.jobs.liveness import holder_token; print(holder_token())")
    assert finished.rsplit(":", 2)[0] == host
    assert finished != own
    assert holder_gone(finished)

    elsewhere = f"{socket.gethostname()}-elsewhere.example:1:1"
    assert not holder_gone(elsewhere)  # cannot be judged from here: its lease will say

    for garbage in ("", "garbage", "no-pid:here"):
        assert holder_gone(garbage)

    # The tokens survive a trip through the database unchanged (as recovery reads them).
    tokens = {"own": own, "finished": finished, "elsewhere": elsewhere}
    for build_id, token in tokens.items():
        env_id = add_env(db, f"env-{build_id}")
        assert queries.take_build_slot(db, env_id, build_id, token, LEASE_END)
    with db.session() as session:
        stored = {lock.build_id: lock.holder for lock in session.scalars(select(BuildSlotRow))}
    assert stored == tokens
    assert {build_id: holder_gone(token) for build_id, token in stored.items()} == {
        "own": False,
        "finished": True,
        "elsewhere": False,
    }
