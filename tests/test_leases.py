"""Leases with the real things: claims and reaping on SQLite and PostgreSQL, migration 0011 on
both, a real uv build whose worker is killed under another host name (its own UTS namespace),
and a real `codenv serve` killed with a build running and one queued, then started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from codenv.domain.names import name_key
from codenv.services import leases
from codenv.storage import leases as lease_queries
from codenv.storage.db import Database
from codenv.storage.models import BuildRow, BuildSlotRow, CodeEnvRow, utcnow
from conftest import Node
from support.databases import database_url  # noqa: F401
from support.samples import slow_archive
from support.server import ADMIN_PASSWORD, free_port, wait_for_build

LEASE = 3
OTHER_HOST = "host-b"


def _in(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


# --- claims and reaping on both databases -------------------------------------------------


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:  # noqa: F811
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def _queued(db: Database, build_id: str) -> int:
    with db.session() as session:
        env = CodeEnvRow(name=build_id, name_key=name_key(build_id), owner="alice", spec={})
        session.add(env)
        session.flush()
        row = BuildRow(id=build_id, env_id=env.id, env_name=build_id, status="queued")
        row.requested_by = "alice"
        session.add(row)
        return env.id


def _claimer(name: str, seconds: float) -> lease_queries.Claimer:
    return lease_queries.Claimer(f"{name}:1:1", f"celery@{name}", name, _in(seconds))


def test_one_claimer_wins_and_a_late_renewal_beats_the_reaper(db: Database) -> None:
    _queued(db, "raced")
    barrier = threading.Barrier(8)
    won: list[str] = []

    def contend(name: str) -> None:
        barrier.wait(timeout=30)
        with db.session() as session:
            if lease_queries.claim_build(session, "raced", _claimer(name, 60), utcnow()):
                won.append(name)

    threads = [threading.Thread(target=contend, args=(f"host-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) == 1
    winner = f"{won[0]}:1:1"
    with db.session() as session:
        row = session.get_one(BuildRow, "raced")
        assert (row.holder, row.worker, row.host) == (winner, f"celery@{won[0]}", won[0])
        assert not lease_queries.claim_build(session, "raced", _claimer("late", 60), utcnow())
        assert not lease_queries.renew_build_lease(session, "raced", "late:1:1", _in(60), False)

    with db.session() as session:  # the reaper saw the lease as it was...
        seen = session.get_one(BuildRow, "raced")
    with db.session() as session:  # ...then the holder renewed it: the reaper must not win
        assert lease_queries.renew_build_lease(session, "raced", winner, _in(120), False)
    with db.session() as session:
        assert not lease_queries.fail_claimed_build(session, seen, "too late", utcnow())
    with db.session() as session:
        fresh = session.get_one(BuildRow, "raced")
    with db.session() as session:
        assert lease_queries.fail_claimed_build(session, fresh, "its lease expired", utcnow())
        assert not lease_queries.renew_build_lease(session, "raced", winner, _in(60), False)
    with db.session() as session:
        failed = session.get_one(BuildRow, "raced")
        assert (failed.status, failed.error, failed.lease_expires_at) == (
            "failed",
            "its lease expired",
            None,
        )


# --- migration 0011 -----------------------------------------------------------------------


def _alembic(db: Database, action: str, target: str) -> None:
    config = Config()
    location = resources.files("codenv.storage").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, target)


OLD_BUILD = (
    "INSERT INTO builds (id, env_id, env_name, status, kind, step, upgrade_all, rebuild,"
    " requested_by, holder, cancel_requested, created_at, started_at)"
    " VALUES (:id, 1, 'demo', :status, 'update', 'x', false, false, 'alice', :holder, false,"
    " :at, :started)"
)


def test_migration_0011_fills_the_lease_columns(database_url: str) -> None:  # noqa: F811
    db = Database(database_url)
    try:
        _alembic(db, "upgrade", "0010")
        at = datetime(2025, 1, 1, tzinfo=UTC)
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO code_envs (id, name, name_key, owner, spec, created_at,"
                    " updated_at) VALUES (1, 'demo', 'demo', 'alice', '{}', :at, :at)"
                ),
                {"at": at},
            )
            for build_id, status, holder, started in (
                ("ran", "succeeded", "host-a:123:456", at),
                ("running", "running", "host-a:124:9", at),
                ("waiting", "queued", "host-a:125:9", None),
                ("brokered", "queued", "", None),
            ):
                values = {"id": build_id, "status": status, "holder": holder}
                connection.execute(text(OLD_BUILD), {**values, "at": at, "started": started})
            connection.execute(
                text(
                    "INSERT INTO build_slots (env_id, build_id, holder, acquired_at)"
                    " VALUES (1, 'running', 'host-a:124:9', :at)"
                ),
                {"at": at},
            )
        before = utcnow()
        _alembic(db, "upgrade", "0011")
        with db.session() as session:
            rows = {row.id: row for row in session.query(BuildRow)}
            slot = session.get_one(BuildSlotRow, 1)
        assert (rows["ran"].worker, rows["ran"].host) == ("codenv-123@host-a", "host-a")
        assert (rows["running"].worker, rows["running"].host) == ("codenv-124@host-a", "host-a")
        assert rows["waiting"].worker is None and rows["brokered"].host is None
        # Running under an older codenv: its lease ends now, so the reaper judges it at once.
        assert [row.id for row in rows.values() if row.lease_expires_at is not None] == ["running"]
        expired = rows["running"].lease_expires_at
        assert expired is not None and slot.lease_expires_at is not None
        assert before - timedelta(seconds=5) < expired.replace(tzinfo=UTC) <= utcnow()
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("builds")}
        assert {"ix_builds_status_lease", "ix_builds_finished"} <= indexes

        _alembic(db, "downgrade", "0010")
        columns = {column["name"] for column in inspect(db.engine).get_columns("builds")}
        assert not {"worker", "host", "lease_expires_at"} & columns
        _alembic(db, "upgrade", "0011")
    finally:
        db.dispose()


# --- a real uv build, its worker killed under another host name ---------------------------


def _uts_namespaces_work() -> str | None:
    probe = ["unshare", "--uts", sys.executable, "-c", "import socket; socket.sethostname('x')"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return "unshare is not installed"
    return None if result.returncode == 0 else f"no UTS namespace here: {result.stderr.strip()}"


def _as_host(host: str, node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    """`codenv ARGS` in a UTS namespace of its own named `host` (so its detached build too)."""
    start = (
        "import os, socket, sys; socket.sethostname(sys.argv[1]); "
        "os.execv(sys.executable, [sys.executable, '-m', 'codenv', *sys.argv[2:]])"
    )
    command = ["unshare", "--uts", sys.executable, "-c", start, host, *args]
    return subprocess.run(
        command, env=node.environ, capture_output=True, text=True, timeout=120, check=True
    )


def _row_of(node: Node, build_id: str) -> BuildRow:
    app = node.app()
    try:
        with app.db.session() as session:
            return session.get_one(BuildRow, build_id)
    finally:
        app.close()


def _wait_for_step(node: Node, build_id: str, step: str, timeout: float = 120) -> BuildRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = _row_of(node, build_id)
        if row.step == step:
            return row
        time.sleep(0.2)
    raise AssertionError(f"build {build_id} never reached {step!r}")


def test_a_worker_killed_on_another_host_fails_its_build_within_the_lease(
    node: Node, newest: str
) -> None:
    problem = _uts_namespaces_work()
    if problem is not None:
        pytest.skip(problem)
    node.environ_extra["CODENV_LEASE_SECONDS"] = str(LEASE)
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "alpha", "--update")
    slow = slow_archive(node.allow_local_sources(), "slowpkg", "1.0", seconds=8)
    node.run("save", "demo", "--add", str(slow))

    queued = json.loads(_as_host(OTHER_HOST, node, "update", "demo", "--no-wait", "--json").stdout)
    build_id = queued["build_id"]
    row = _wait_for_step(node, build_id, "installing")
    host, pid, _started = row.holder.rsplit(":", 2)
    assert (row.host, host, row.worker) == (OTHER_HOST, OTHER_HOST, f"codenv-{pid}@{OTHER_HOST}")
    os.killpg(int(pid), signal.SIGKILL)  # the worker and everything it started
    killed = time.monotonic()

    app = node.app()  # this host: it knows nothing of host-b's processes, only the lease
    reaper = leases.start_reaper(app)
    try:
        while _row_of(node, build_id).status == "running":
            assert time.monotonic() - killed < LEASE * 2 + 5, "not reaped within the lease"
            time.sleep(0.1)
        reaped_after = time.monotonic() - killed
    finally:
        reaper.stop()
        app.close()
    failed = _row_of(node, build_id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert f"the worker codenv-{pid}@{OTHER_HOST} on host {OTHER_HOST} stopped renewing" in (
        failed.error
    )
    print(f"reaped {reaped_after:.1f} s after the kill (lease {LEASE} s)")
    shown = json.loads(node.run("show", "demo", "--json").stdout)
    assert shown["active_revision"] == 2
    assert node.env_python_run("demo", "import alpha; print(alpha.__version__)") == "1.0"

    node.run("update", "demo")  # the slot is free: the next update succeeds
    assert json.loads(node.run("show", "demo", "--json").stdout)["active_revision"] == 3
    assert node.env_python_run("demo", "import slowpkg; print(slowpkg.__version__)") == "1.0"
    builds = json.loads(node.run("builds", "demo", "--json").stdout)
    assert builds[0]["worker"].endswith(f"@{os.uname().nodename}")


# --- a real server killed, then started again ---------------------------------------------


@contextmanager
def _serve(node: Node, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`codenv serve` in a session of its own (killed with its builds by killpg)."""
    environ = {**node.environ, "CODENV_ADMIN_PASSWORD": ADMIN_PASSWORD}
    command = [sys.executable, "-m", "codenv", "serve", "--port", str(port), "--workers", "1"]
    with (node.home.parent / f"serve-{port}.log").open("w") as log:
        process = subprocess.Popen(
            command, env=environ, stdout=log, stderr=log, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/login", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _api(port: int, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120)


def _admin_token(port: int) -> str:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as browser:
        logged_in = browser.post(
            "/api/v1/session", json={"name": "admin", "password": ADMIN_PASSWORD}
        )
        browser.headers["X-CSRF-Token"] = logged_in.json()["csrf_token"]
        return str(browser.post("/api/v1/tokens", json={"name": "tests"}).json()["secret"])


def test_a_build_queued_when_its_server_stopped_runs_when_it_starts_again(
    node: Node, newest: str
) -> None:
    node.environ_extra.update(CODENV_LEASE_SECONDS=str(LEASE), CODENV_MAX_PARALLEL_BUILDS="1")
    for name in ("slow", "later"):
        node.run("create", name, "--python", newest, "--no-core-packages")
    slow = slow_archive(node.allow_local_sources(), "slowpkg", "1.0", seconds=30)
    node.run("save", "slow", "--add", str(slow))
    node.run("save", "later", "--add", "alpha")

    port = free_port()
    with _serve(node, port) as server:
        token = _admin_token(port)
        api = _api(port, token)
        running = api.post("/api/v1/envs/slow/update", json={}).json()["build_id"]
        waiting = api.post("/api/v1/envs/later/update", json={}).json()["build_id"]
        _wait_for_step(node, running, "installing")
        assert _row_of(node, waiting).status == "queued"  # one build thread: it waits
        assert _row_of(node, waiting).holder.split(":")[1] == str(server.pid)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert _row_of(node, waiting).status == "queued"  # queued builds never expire

    port = free_port()
    with _serve(node, port):
        api = _api(port, token)
        assert wait_for_build(api, waiting)["status"] == "succeeded"
        stopped = api.get(f"/api/v1/builds/{running}").json()
        assert stopped["status"] == "failed"
        assert "stopped before it finished" in stopped["error"]
        assert api.get("/api/v1/envs/later").json()["active_revision"] == 2
        assert api.get("/api/v1/envs/slow").json()["active_revision"] == 1
    assert not (node.home / "envs" / "slow" / "revisions" / "2").exists()
