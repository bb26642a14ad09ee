"""Leases on the fake installer: claims won once, the heartbeat, the reaper (a worker of another
host that stopped, a lease taken away), queued builds that never expire and are adopted from a
dead process, the sweep of half-built revisions, and slots held under a lease."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from codenv.backends.base import Run, clean_environ, run_logged
from codenv.backends.fake import FakeInstaller
from codenv.domain.errors import Conflict
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.envdirs.layout import EnvLayout
from codenv.jobs.liveness import holder_token
from codenv.services import builds, envs, leases, logs, revisions
from codenv.services.actor import Actor
from codenv.services.app import Codenv, QueueKind, open_codenv
from codenv.services.leftovers import sweep_leftovers
from codenv.services.recovery import recover
from codenv.settings import load_settings
from codenv.storage import queries
from codenv.storage.models import BuildRow, BuildSlotRow, utcnow

LEASE = 3  # seconds: renewed every second, reaped every 1.5 s
OTHER_HOST = "host-b.example"


class HeldQueue:
    """A queue that keeps its jobs: a build stays queued until a test runs it."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def submit(self, build_id: str) -> None:
        self.jobs.append(build_id)

    def wait(self, build_id: str) -> None:
        return None


def open_leased(home: Path, fake: FakeInstaller, queue: QueueKind = "inline") -> Codenv:
    environ = {"CODENV_INDEX_URL": "http://127.0.0.1:9/simple", "CODENV_LEASE_SECONDS": str(LEASE)}
    return open_codenv(load_settings(home, environ), queue, installer=fake, editables=fake)


@pytest.fixture
def app(tmp_path: Path, fake: FakeInstaller) -> Iterator[Codenv]:
    opened = open_leased(tmp_path / "home", fake)
    yield opened
    opened.close()


def _wait_for(predicate: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _built(app: Codenv, admin: Actor, python: str) -> None:
    created = envs.create_env(app, admin, "demo", EnvSpec(python=python, requested="alpha\n"))
    assert builds.get_build(app, admin, created.build_id).status == "succeeded"


def _queued_update(app: Codenv, admin: Actor) -> str:
    """An update of `demo` that stays queued: no queue of this process has it."""
    running, app.queue = app.queue, HeldQueue()
    try:
        envs.save_spec(app, admin, "demo", SpecChanges(add=("beta",)))
        build_id = builds.request_update(app, admin, "demo").build_id
    finally:
        app.queue = running
    assert build_id is not None
    return build_id


def _row(app: Codenv, build_id: str) -> BuildRow:
    with app.db.session() as session:
        return session.get_one(BuildRow, build_id)


def _dead_token() -> str:
    """The holder token of a process of this host that has exited."""
    code = "from codenv.jobs.liveness import holder_token; print(holder_token())"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def _in(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def _claimed_elsewhere(app: Codenv, build_id: str, expires_in: float) -> None:
    """As a worker on another host leaves its build: claimed, running, its slot held, both
    under a lease that ends in `expires_in` seconds."""
    until, holder = _in(expires_in), f"{OTHER_HOST}:4242:1"
    with app.db.session() as session:
        row = session.get_one(BuildRow, build_id)
        row.status, row.step, row.started_at, row.revision = "running", "installing", utcnow(), 2
        row.holder, row.worker, row.host = holder, f"celery@{OTHER_HOST}", OTHER_HOST
        row.lease_expires_at = until
        assert row.env_id is not None
        slot = BuildSlotRow(env_id=row.env_id, build_id=build_id, holder=holder)
        slot.lease_expires_at = until
        session.add(slot)


# --- claims -------------------------------------------------------------------------------


def test_a_build_is_claimed_once_and_never_once_finished(
    app: Codenv, admin: Actor, newest: str
) -> None:
    _built(app, admin, newest)
    build_id = _queued_update(app, admin)
    assert _row(app, build_id).lease_expires_at is None  # queued: no lease

    winners: list[bool] = []
    barrier = threading.Barrier(8)

    def contend() -> None:
        barrier.wait(timeout=10)
        winners.append(leases.claim(app, build_id))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(winners) == [False] * 7 + [True]
    assert not leases.claim(app, build_id)  # a redelivered task: claimed already
    claimed = _row(app, build_id)
    assert (claimed.status, claimed.holder) == ("queued", holder_token())
    assert (claimed.worker, claimed.host) == leases.worker_identity()

    with app.db.session() as session:  # its claimer stopped before it took the slot
        session.get_one(BuildRow, build_id).lease_expires_at = _in(-1)
    assert leases.claim(app, build_id)  # an expired claim is free again
    with app.db.session() as session:
        session.get_one(BuildRow, build_id).status = "cancelled"
    assert not leases.claim(app, build_id)  # finished: nothing to do


def test_a_build_records_the_worker_and_host_that_ran_it(
    app: Codenv, admin: Actor, newest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _built(app, admin, newest)
    first = builds.list_builds(app, admin, "demo")[0]
    worker, host = leases.worker_identity()
    assert (first.worker, first.host) == (worker, socket.gethostname())
    assert first.to_dict()["worker"] == worker and worker.endswith(f"@{host}")
    assert _row(app, first.id).lease_expires_at is None  # ended: no lease

    monkeypatch.setitem(leases._named, "worker", "celery@named")
    envs.save_spec(app, admin, "demo", SpecChanges(add=("beta",)))
    build_id = builds.request_update(app, admin, "demo").build_id
    assert build_id is not None
    assert builds.get_build(app, admin, build_id).worker == "celery@named"


# --- the heartbeat ------------------------------------------------------------------------


def _running_lease(app: Codenv) -> object:
    with app.db.session() as session:
        return session.scalar(select(BuildRow.lease_expires_at).where(BuildRow.status == "running"))


def test_the_lease_is_renewed_while_the_build_runs(
    tmp_path: Path, fake: FakeInstaller, admin: Actor, newest: str
) -> None:
    app = open_leased(tmp_path / "home", fake, "threads")
    leases_seen: list[object] = []
    reaped: list[list[str]] = []

    def longer_than_a_lease(_run: Run) -> None:
        for _ in range(9):  # 4.5 s, 1.5 leases: the claim's first lease alone would expire
            time.sleep(0.5)
            leases_seen.append(_running_lease(app))
        reaped.append(leases.reap_expired(app))

    fake.hooks["install"] = longer_than_a_lease  # type: ignore[assignment]
    try:
        created = envs.create_env(app, admin, "demo", EnvSpec(python=newest, requested="alpha\n"))
        app.queue.wait(created.build_id)
        assert builds.get_build(app, admin, created.build_id).status == "succeeded"
    finally:
        app.close()
    assert reaped == [[]]
    assert None not in leases_seen
    assert len(set(leases_seen)) >= 3, leases_seen  # renewed every lease/3
    assert leases_seen == sorted(leases_seen)  # type: ignore[type-var]


def _sleeping_install(started: threading.Event, marker: str) -> Callable[[Run], None]:
    """An install that runs a real process until its build is stopped."""

    def hook(run: Run) -> None:
        started.set()
        run_logged("installing", ["sh", "-c", f"sleep {marker} & wait"], run, clean_environ({}))

    return hook


def _processes_with(marker: str) -> bool:
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    return True
        except OSError:
            continue
    return False


def test_a_build_whose_lease_was_taken_away_stops(
    tmp_path: Path, fake: FakeInstaller, admin: Actor, newest: str
) -> None:
    app = open_leased(tmp_path / "home", fake, "threads")
    try:
        created = envs.create_env(app, admin, "demo", EnvSpec(python=newest, requested="alpha\n"))
        app.queue.wait(created.build_id)
        started, marker = threading.Event(), f"{70 + time.time() % 1:.4f}"
        fake.hooks["install"] = _sleeping_install(started, marker)  # type: ignore[assignment]
        envs.save_spec(app, admin, "demo", SpecChanges(add=("beta",)))
        build_id = builds.request_update(app, admin, "demo").build_id
        assert build_id is not None
        assert started.wait(20)
        # Seen from a reaper that believes the lease expired (a stalled database, a clock):
        with app.db.session() as session:
            session.get_one(BuildRow, build_id).lease_expires_at = _in(-1)
        assert leases.reap_expired(app) == [build_id]

        app.queue.wait(build_id)  # its worker saw the lease gone, and stopped
        _wait_for(lambda: not _processes_with(marker))
        build = builds.get_build(app, admin, build_id)
        assert build.status == "failed"
        assert build.error is not None and "stopped renewing its lease" in build.error
        assert "lost the build's lease" in logs.read_log(app, admin, build_id)[0]
        layout = EnvLayout.of(app.settings.envs_dir, "demo")
        assert envs.show_env(app, admin, "demo").active_revision == 1
        assert layout.current_number() == 1
        assert not layout.revision(2).exists()
        fake.hooks.clear()
        retry = builds.request_update(app, admin, "demo").build_id
        assert retry is not None
        app.queue.wait(retry)
        assert builds.get_build(app, admin, retry).status == "succeeded"
    finally:
        app.close()


# --- the reaper ---------------------------------------------------------------------------


def test_the_reaper_fails_a_build_whose_worker_on_another_host_stopped(
    app: Codenv, admin: Actor, newest: str
) -> None:
    _built(app, admin, newest)
    build_id = _queued_update(app, admin)
    _claimed_elsewhere(app, build_id, expires_in=60)
    # Alive as far as anyone knows: its pid means nothing here.
    assert leases.reap_expired(app) == []
    recover(app)
    assert _row(app, build_id).status == "running"

    with app.db.session() as session:  # "killed": it stopped renewing, and the lease ran out
        expired = _in(-1)
        session.get_one(BuildRow, build_id).lease_expires_at = expired
        session.get_one(BuildSlotRow, _row(app, build_id).env_id).lease_expires_at = expired
    assert leases.reap_expired(app) == [build_id]

    build = builds.get_build(app, admin, build_id)
    assert build.status == "failed"
    assert build.error is not None
    assert f"the worker celery@{OTHER_HOST} on host {OTHER_HOST} stopped renewing its lease" in (
        build.error
    )
    assert build.error.endswith("(killed, or its host lost); the active revision is unchanged")
    assert (build.worker, build.host) == (f"celery@{OTHER_HOST}", OTHER_HOST)
    assert build.error in logs.read_log(app, admin, build_id)[0]
    with app.db.session() as session:
        assert session.scalars(select(BuildSlotRow)).all() == []
    assert leases.reap_expired(app) == []  # once

    update = builds.request_update(app, admin, "demo").build_id  # the next one succeeds
    assert update is not None
    assert builds.get_build(app, admin, update).status == "succeeded"
    assert envs.show_env(app, admin, "demo").active_revision == 2


def test_a_waiting_build_frees_the_slot_of_a_holder_that_stopped(
    app: Codenv, admin: Actor, newest: str
) -> None:
    """No reaper runs (a CLI command): the build waiting for the slot judges its holder."""
    _built(app, admin, newest)
    stuck = _queued_update(app, admin)
    _claimed_elsewhere(app, stuck, expires_in=1)
    time.sleep(1.2)
    update = builds.request_update(app, admin, "demo").build_id
    assert update is not None
    assert builds.get_build(app, admin, update).status == "succeeded"
    failed = builds.get_build(app, admin, stuck)
    assert failed.status == "failed" and "stopped renewing its lease" in (failed.error or "")


# --- queued builds ------------------------------------------------------------------------


def test_queued_builds_never_expire(app: Codenv, admin: Actor, newest: str) -> None:
    _built(app, admin, newest)
    in_a_broker = _queued_update(app, admin)  # holder "": a broker or a detached worker has it
    elsewhere = _queued_update(app, admin)
    with app.db.session() as session:
        for build_id in (in_a_broker, elsewhere):
            session.get_one(BuildRow, build_id).created_at = _in(-3 * 86400)
        session.get_one(BuildRow, elsewhere).holder = f"{OTHER_HOST}:4242:1"
    recover(app)
    assert leases.reap_expired(app) == []
    assert leases.adopt_orphans(app) == []  # an inline queue keeps nothing in memory
    assert {builds.get_build(app, admin, b).status for b in (in_a_broker, elsewhere)} == {"queued"}


def test_a_dead_process_s_queued_build_runs_in_a_reaper_s_process(
    tmp_path: Path, app: Codenv, fake: FakeInstaller, admin: Actor, newest: str
) -> None:
    _built(app, admin, newest)
    orphan, ours, elsewhere = (_queued_update(app, admin) for _ in range(3))
    with app.db.session() as session:
        session.get_one(BuildRow, orphan).holder = _dead_token()  # its server stopped
        session.get_one(BuildRow, ours).holder = holder_token()  # in a live queue: this one's
        session.get_one(BuildRow, elsewhere).holder = f"{OTHER_HOST}:4242:1"
    server = open_leased(tmp_path / "home", fake, "threads")
    try:
        reaper = leases.start_reaper(server)
        try:
            _wait_for(lambda: builds.get_build(app, admin, orphan).finished)
        finally:
            reaper.stop()
        assert builds.get_build(app, admin, orphan).status == "succeeded"
        assert builds.get_build(app, admin, ours).status == "queued"
        assert builds.get_build(app, admin, elsewhere).status == "queued"
        assert leases.adopt_orphans(server) == []  # adopted once
    finally:
        server.close()


# --- leftovers ----------------------------------------------------------------------------


def test_the_sweep_removes_half_built_revisions_and_stale_staging(
    app: Codenv, admin: Actor, newest: str
) -> None:
    _built(app, admin, newest)
    layout = EnvLayout.of(app.settings.envs_dir, "demo")
    finished = builds.list_builds(app, admin, "demo")[0].id
    queued = _queued_update(app, admin)
    for path in (layout.revision(7), layout.staging_dir(finished), layout.staging_dir(queued)):
        path.mkdir(parents=True)

    env_id = _row(app, queued).env_id
    assert env_id is not None
    held = queries.take_build_slot(app.db, env_id, "busy", holder_token(), _in(60))
    assert held  # a build holds the slot: it may be making revision 7
    assert sweep_leftovers(app) == [layout.staging_dir(finished)]
    assert layout.revision(7).exists() and layout.staging_dir(queued).exists()
    with app.db.session() as session:
        queries.release_build_slot(session, "busy")
    assert sweep_leftovers(app) == [layout.revision(7)]
    assert layout.revision(1).exists() and layout.staging_dir(queued).exists()

    # Later passes look only at the envs whose builds failed or were cancelled since.
    layout.revision(8).mkdir()
    since = utcnow()
    assert sweep_leftovers(app, since) == []
    with app.db.session() as session:
        row = session.get_one(BuildRow, queued)
        row.status, row.finished_at = "cancelled", utcnow()
    assert sweep_leftovers(app, since) == [layout.staging_dir(queued), layout.revision(8)]


# --- slots outside builds -----------------------------------------------------------------


def test_a_rollback_holds_the_slot_under_a_renewed_lease(
    app: Codenv, admin: Actor, newest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _built(app, admin, newest)
    envs.save_spec(app, admin, "demo", SpecChanges(add=("beta",)))
    builds.request_update(app, admin, "demo")
    seen: list[BuildSlotRow] = []
    real_switch = EnvLayout.switch_current

    def slow_switch(self: EnvLayout, number: int) -> None:
        time.sleep(LEASE * 1.5)  # longer than a lease: renewed meanwhile
        assert leases.reap_expired(app) == []
        with app.db.session() as session:
            seen.extend(session.scalars(select(BuildSlotRow)))
        real_switch(self, number)

    monkeypatch.setattr(EnvLayout, "switch_current", slow_switch)
    revisions.rollback(app, admin, "demo", 1)
    (slot,) = seen
    assert slot.build_id.startswith("rollback-") and slot.holder == holder_token()
    with app.db.session() as session:
        assert session.scalars(select(BuildSlotRow)).all() == []


def test_a_slot_left_by_a_dead_rollback_here_is_freed_at_once(
    app: Codenv, admin: Actor, newest: str
) -> None:
    _built(app, admin, newest)
    envs.save_spec(app, admin, "demo", SpecChanges(add=("beta",)))
    builds.request_update(app, admin, "demo")
    env_id = _row(app, builds.list_builds(app, admin, "demo")[0].id).env_id
    assert env_id is not None
    assert queries.take_build_slot(app.db, env_id, "rollback-dead", _dead_token(), _in(3600))
    with pytest.raises(Conflict, match="had stopped and was cleared"):
        revisions.rollback(app, admin, "demo", 1)
    revisions.rollback(app, admin, "demo", 1)
    assert envs.show_env(app, admin, "demo").active_revision == 1


def test_a_claimed_build_cancelled_while_it_waits_for_the_slot_stops_cancelled(
    tmp_path: Path, fake: FakeInstaller, admin: Actor, newest: str
) -> None:
    app = open_leased(tmp_path / "home", fake, "threads")
    try:
        created = envs.create_env(app, admin, "demo", EnvSpec(python=newest, requested="alpha\n"))
        app.queue.wait(created.build_id)
        env_id = _row(app, created.build_id).env_id
        assert env_id is not None
        assert queries.take_build_slot(app.db, env_id, "busy", holder_token(), _in(3600))
        envs.save_spec(app, admin, "demo", SpecChanges(add=("beta",)))
        build_id = builds.request_update(app, admin, "demo").build_id
        assert build_id is not None
        _wait_for(lambda: "waiting" in logs.read_log(app, admin, build_id)[0])
        assert _row(app, build_id).lease_expires_at is not None  # claimed, renewed meanwhile
        assert builds.cancel_build(app, admin, build_id).status == "cancelled"
        app.queue.wait(build_id)
        log = logs.read_log(app, admin, build_id)[0]
        assert "cancelled" in log.splitlines()[-1] and "lease" not in log
        assert _row(app, build_id).lease_expires_at is None
        with app.db.session() as session:
            assert session.get_one(BuildSlotRow, env_id).build_id == "busy"
    finally:
        app.close()
