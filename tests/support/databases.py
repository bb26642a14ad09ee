"""Fresh, empty databases for tests, on both storage backends.

* ``sqlite``: a file in the test's temporary directory;
* ``postgresql``: a uniquely named database on the local server (``127.0.0.1:5432``, user
  ``postgres``, trust auth), created for the test and dropped afterwards.

When PostgreSQL cannot be reached the test is skipped, except in CI (``CI=true``), where a
missing service is a failure.

Use the ``database_url`` fixture (parametrized over both backends) in a test module::

    from support.databases import database_url  # noqa: F401

or ``database_urls()`` / ``fresh_database_url()`` directly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

BACKENDS: tuple[str, ...] = ("sqlite", "postgresql")
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
# The maintenance database the per-test databases are created from and dropped through.
PG_ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
CONNECT_TIMEOUT = 5


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=CONNECT_TIMEOUT)


@cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (probed once per session), or None when it can."""
    try:
        with _admin_connection() as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} as {PG_USER}: {error}"
    return None


def _postgres_unavailable(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the PostgreSQL service is required)", pytrace=False)
    pytest.skip(reason)


def _drop_postgres_database(name: str) -> None:
    with _admin_connection() as connection:
        # Connections left open by the test (a pool, a subprocess) would block the drop.
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextmanager
def _postgres_database() -> Iterator[str]:
    problem = _postgres_problem()
    if problem is not None:
        _postgres_unavailable(problem)
    name = f"codenv_test_{uuid.uuid4().hex[:20]}"
    try:
        with _admin_connection() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        _postgres_unavailable(f"cannot create a PostgreSQL test database: {error}")
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _drop_postgres_database(name)


@contextmanager
def fresh_database_url(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty database of ``backend``; dropped when the block ends."""
    if backend == "sqlite":
        path = directory / f"codenv-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"
    elif backend == "postgresql":
        with _postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown database backend {backend!r}; known: {', '.join(BACKENDS)}")


@contextmanager
def database_urls(directory: Path, backends: Sequence[str] = BACKENDS) -> Iterator[dict[str, str]]:
    """One fresh database per backend, as ``{backend: url}``; all dropped when the block ends.

    Skips (or, in CI, fails) the calling test when PostgreSQL is asked for and unreachable.
    """
    with ExitStack() as stack:
        yield {
            backend: stack.enter_context(fresh_database_url(backend, directory))
            for backend in backends
        }


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL; the test runs once per backend."""
    with fresh_database_url(request.param, tmp_path) as url:
        yield url
