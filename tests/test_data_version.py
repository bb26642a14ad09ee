"""The data version (storage/data_version.py) on SQLite and PostgreSQL: raised by every commit
that changes a watched table, whatever wrote it, and not by what changes on every request."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text, update

from codenv.storage import data_version
from codenv.storage.db import Database
from codenv.storage.models import Base, CodeEnvRow, LoginFailureRow
from support.databases import database_url  # noqa: F401
from test_storage import add_env
from test_storage import db as storage_db  # noqa: F401 (a fixture, on both databases)


@pytest.fixture
def db(storage_db: Database) -> Database:  # noqa: F811
    return storage_db


def test_every_table_but_the_unwatched_ones_raises_the_version(db: Database) -> None:
    # A table added later without its migration watching it would serve stale cached reads.
    with db.engine.connect() as connection:
        watched = data_version.watched_tables(connection)
    tables = set(Base.metadata.tables) | {"alembic_version"}
    assert watched == tables - data_version.UNWATCHED
    assert tables >= data_version.UNWATCHED


def test_a_commit_raises_the_version_and_a_rollback_does_not(db: Database) -> None:
    start = db.data_version()
    env_id = add_env(db, "alpha")
    after_insert = db.data_version()
    assert after_insert > start
    with db.session() as session:  # an update by a Core statement, not the ORM
        session.execute(update(CodeEnvRow).where(CodeEnvRow.id == env_id).values(owner="bob"))
    after_update = db.data_version()
    assert after_update > after_insert
    with pytest.raises(RuntimeError), db.session() as session:
        session.execute(update(CodeEnvRow).values(owner="carol"))
        raise RuntimeError("the unit of work fails")
    assert db.data_version() == after_update
    with db.session() as session:  # a delete
        session.execute(text("DELETE FROM code_envs"))
    assert db.data_version() > after_update


def test_a_restored_backup_never_brings_back_a_version_of_other_data(db: Database) -> None:
    before_backup = db.data_version()
    add_env(db, "kept-after-the-backup")
    seen = db.data_version()
    with db.session() as session:  # what restoring the backup does to the version's row
        session.execute(text("UPDATE data_version SET version = :v"), {"v": before_backup})
    add_env(db, "written-after-the-restore")
    # Counting on from the backup's version would reach `seen` again with other data.
    assert db.data_version() > seen


def test_unwatched_tables_leave_it_alone(db: Database) -> None:
    start = db.data_version()
    with db.session() as session:  # what a failed login writes
        session.add(LoginFailureRow(name_key="who", source="127.0.0.1", failures=1))
    assert db.data_version() == start


def test_postgresql_writers_do_not_queue_on_the_version_until_they_commit(
    db: Database,
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time anyway")
    first, second = add_env(db, "first"), add_env(db, "second")
    with db.engine.connect() as holder:
        # An open transaction that changed a watched table and has not committed yet.
        holder.execute(update(CodeEnvRow).where(CodeEnvRow.id == first).values(owner="x"))
        done = threading.Event()

        def other_writer() -> None:
            with db.engine.begin() as connection:
                connection.execute(text("SET LOCAL lock_timeout = '5s'"))
                stmt = update(CodeEnvRow).where(CodeEnvRow.id == second).values(owner="y")
                connection.execute(stmt)
            done.set()

        thread = threading.Thread(target=other_writer)
        thread.start()
        # Raised at commit, not at the update: the second writer commits while the first
        # is still open (with the version raised per statement it would wait for it).
        assert done.wait(10), "a writer waited for another's open transaction"
        thread.join()
        holder.commit()
    assert db.data_version() >= 4
