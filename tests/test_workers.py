"""Builds on Celery workers: PostgreSQL, a real broker (Redis, RabbitMQ), two `codenv worker`
processes each under a host name of its own (a UTS namespace each), real uv builds from the
loopback index. The workers share one home here (one machine); each records its own name and
host on the builds it runs."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from codenv.domain.errors import Unavailable
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.jobs.celery_queue import CeleryQueue
from codenv.services import builds, envs
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.storage.models import BuildRow
from conftest import Node
from support.databases import fresh_database_url
from support.pkgindex import PackageIndex
from support.samples import slow_archive
from support.server import free_port
from support.workers import (
    BrokerProxy,
    Worker,
    broker_queue,
    broker_url,
    host_name,
    require_uts_namespaces,
    running_workers,
)

# One at a time: each test runs two workers of two build threads on this 2-core machine.
pytestmark = pytest.mark.xdist_group("workers")
LEASE_SECONDS = 6
# The reaper runs every half lease: a dead worker's build fails within a lease and a half,
# plus the time a poll and a slow machine take.
FAIL_WITHIN = LEASE_SECONDS * 1.5 + 6
BUILD_SECONDS = 120
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass
class Deployment:
    """A home on PostgreSQL whose builds go to a broker queue of the test's own."""

    node: Node
    app: Codenv
    queue: str


@contextmanager
def deployment(tmp_path: Path, index_url: str, broker: str) -> Iterator[Deployment]:
    require_uts_namespaces()
    url = broker_url(broker)
    with fresh_database_url("postgresql", tmp_path) as database, broker_queue(url) as queue:
        extra = {
            "CODENV_DATABASE_URL": database,
            "CODENV_BROKER_URL": url,
            "CODENV_BUILD_QUEUE": queue,
            "CODENV_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        node = Node(tmp_path / "home", index_url, extra)
        # The schema is made here, once, before workers start on it.
        app = node.app()
        try:
            assert isinstance(app.queue, CeleryQueue)
            yield Deployment(node, app, queue)
        finally:
            app.close()


def _rows(app: Codenv, ids: list[str]) -> dict[str, BuildRow]:
    with app.db.session() as session:
        rows = {build_id: session.get(BuildRow, build_id) for build_id in ids}
        session.expunge_all()
    return {build_id: row for build_id, row in rows.items() if row is not None}


def wait_builds(
    app: Codenv, ids: list[str], workers: list[Worker], timeout: float = BUILD_SECONDS
) -> dict[str, BuildRow]:
    """The builds' rows once all have ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _rows(app, ids)
        if len(rows) == len(ids) and all(row.status in FINISHED for row in rows.values()):
            return rows
        time.sleep(0.2)
    logs = "\n".join(f"--- {worker.name}\n{worker.log()[-4000:]}" for worker in workers)
    raise AssertionError(f"builds still unfinished after {timeout} s:\n{logs}")


def wait_running(app: Codenv, build_id: str, timeout: float = 60) -> BuildRow:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = _rows(app, [build_id]).get(build_id)
        if row is not None and row.status == "running" and row.host:
            return row
        time.sleep(0.1)
    raise AssertionError(f"build {build_id} did not start running within {timeout} s")


def _succeeded(rows: dict[str, BuildRow], workers: list[Worker]) -> None:
    failed = {row.id: row.error for row in rows.values() if row.status != "succeeded"}
    logs = "\n".join(f"--- {worker.name}\n{worker.log()[-4000:]}" for worker in workers)
    assert not failed, f"{failed}\n{logs}"


def _spec(newest: str, requested: str) -> EnvSpec:
    return EnvSpec(python=newest, install_core_packages=False, requested=requested)


def _tasks_done(workers: list[Worker]) -> int:
    return sum(worker.log().count("] succeeded in") for worker in workers)


@pytest.mark.postgres
@pytest.mark.parametrize(("broker", "env_count"), [("redis", 6), ("rabbitmq", 2)])
def test_builds_spread_over_two_workers(
    tmp_path: Path, sample_index: PackageIndex, newest: str, broker: str, env_count: int
) -> None:
    admin = Actor.local_admin()
    with deployment(tmp_path, sample_index.url, broker) as deployed:
        hosts = [host_name("host-a"), host_name("host-b")]
        with running_workers(hosts, deployed.node.environ) as workers:
            app = deployed.app
            names = [f"env{number}" for number in range(env_count)]
            ids = [
                envs.create_env(app, admin, name, _spec(newest, "alpha")).build_id for name in names
            ]
            # The second build of each env is queued at once: it waits for the first one.
            ids += [
                builds.request_update(app, admin, name, rebuild=True).build_id or ""
                for name in names
            ]
            rows = wait_builds(app, ids, workers)
            _succeeded(rows, workers)
            assert {row.host for row in rows.values()} == set(hosts)
            assert {row.worker for row in rows.values()} == {f"celery@{host}" for host in hosts}
            for name in names:
                assert envs.show_env(app, admin, name).active_revision == 2

            # A message delivered again for a build that ended does nothing.
            done, before = _tasks_done(workers), rows[ids[0]]
            app.queue.submit(ids[0])
            deadline = time.monotonic() + 30
            while _tasks_done(workers) == done and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _tasks_done(workers) == done + 1
            after = _rows(app, [ids[0]])[ids[0]]
            assert (after.status, after.finished_at, after.host) == (
                "succeeded",
                before.finished_at,
                before.host,
            )

            # The CLI in local mode sends its build to the broker too, and follows it.
            deployed.node.run("save", names[0], "--add", "beta", "--update")
            assert envs.show_env(app, admin, names[0]).active_revision == 3


def _slow_package(index: PackageIndex, workdir: Path, seconds: float) -> None:
    """`slowpkg` on the index: an sdist whose wheel takes `seconds` to build."""
    archive = slow_archive(workdir, "slowpkg", "1.0", seconds=seconds)
    shutil.copy(archive, index.directory / archive.name)


@pytest.mark.postgres
def test_a_killed_worker_fails_its_build_within_the_lease(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    admin = Actor.local_admin()
    index.add_wheel("beta", "2.0")
    _slow_package(index, tmp_path / "slow", seconds=60)
    with deployment(tmp_path, index.url, "redis") as deployed:
        hosts = [host_name("host-a"), host_name("host-b")]
        with running_workers(hosts, deployed.node.environ) as workers:
            app = deployed.app
            first = envs.create_env(app, admin, "victim", _spec(newest, "alpha")).build_id
            _succeeded(wait_builds(app, [first], workers), workers)

            envs.save_spec(app, admin, "victim", SpecChanges(add=("slowpkg",)))
            slow = builds.request_update(app, admin, "victim").build_id or ""
            running = wait_running(app, slow)
            victim = next(worker for worker in workers if worker.host == running.host)
            survivor = next(worker for worker in workers if worker is not victim)
            time.sleep(1.5)  # into the slow wheel build
            killed_at = time.monotonic()
            victim.kill()

            failed = wait_builds(app, [slow], [survivor], timeout=FAIL_WITHIN)[slow]
            assert time.monotonic() - killed_at <= FAIL_WITHIN
            assert failed.status == "failed"
            assert victim.name in (failed.error or "")
            assert victim.host in (failed.error or "")
            assert envs.show_env(app, admin, "victim").active_revision == 1
            assert (deployed.node.home / "envs" / "victim" / "current").resolve().name == "1"

            envs.save_spec(app, admin, "victim", SpecChanges(remove=("slowpkg",), add=("beta",)))
            again = builds.request_update(app, admin, "victim").build_id or ""
            done = wait_builds(app, [again], [survivor])[again]
            _succeeded({again: done}, [survivor])
            assert done.host == survivor.host
            assert envs.show_env(app, admin, "victim").active_revision == done.revision
            assert done.revision not in (None, 1)


@pytest.mark.postgres
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_that_loses_the_broker_finishes_its_build(
    tmp_path: Path, index: PackageIndex, newest: str, broker: str
) -> None:
    admin = Actor.local_admin()
    _slow_package(index, tmp_path / "slow", seconds=4)
    with (
        deployment(tmp_path, index.url, broker) as deployed,
        BrokerProxy(broker_url(broker)) as proxy,
    ):
        # The worker reaches the broker through the proxy; the test sends builds directly.
        environ = {**deployed.node.environ, "CODENV_BROKER_URL": proxy.url}
        with running_workers([host_name("host-a")], environ) as workers:
            app = deployed.app
            build = envs.create_env(app, admin, "cut", _spec(newest, "slowpkg")).build_id
            wait_running(app, build)
            time.sleep(1)
            proxy.cut()
            done = wait_builds(app, [build], workers)[build]
            _succeeded({build: done}, workers)
            assert envs.show_env(app, admin, "cut").active_revision == 1
            # Its message came back when the worker reconnected, and did nothing.
            assert workers[0].log().count("] received") == 2

            # The worker is back on the broker: the next build runs.
            again = envs.create_env(app, admin, "next", _spec(newest, "alpha")).build_id
            _succeeded(wait_builds(app, [again], workers), workers)
            assert _rows(app, [build])[build].finished_at == done.finished_at


def test_a_build_no_broker_takes_fails_at_once(
    tmp_path: Path, sample_index: PackageIndex, newest: str
) -> None:
    """Sent to a broker that is down, a build would wait for a worker forever."""
    admin = Actor.local_admin()
    down = {"CODENV_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    app = Node(tmp_path / "home", sample_index.url, down).app()
    try:
        with pytest.raises(Unavailable, match="broker cannot be reached"):
            envs.create_env(app, admin, "unsent", _spec(newest, "alpha"))
        (build,) = builds.list_builds(app, admin, "unsent")
        assert build.status == "failed"
        assert "broker cannot be reached" in (build.error or "")
    finally:
        app.close()
