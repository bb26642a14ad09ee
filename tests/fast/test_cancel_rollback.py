"""Cancelling builds (queued and running), rollback's order against start-up reconciliation,
and recovery of builds whose process died."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from codenv.backends.base import Run, clean_environ, run_logged
from codenv.backends.fake import FakeInstaller
from codenv.domain.errors import Conflict, PermissionDenied
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.envdirs.layout import EnvLayout
from codenv.services import accounts, builds, envs, logs, permissions, revisions
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.authentication import load_actor
from codenv.services.recovery import recover
from codenv.storage.models import BuildRow, utcnow
from fast.conftest import open_fake


class HeldQueue:
    """A queue that keeps the jobs it is given, to run them when a test says so."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def submit(self, build_id: str) -> None:
        self.jobs.append(build_id)

    def wait(self, build_id: str) -> None:
        return None


def _create(app: Codenv, admin: Actor, python: str) -> None:
    envs.create_env(app, admin, "demo", EnvSpec(python=python, requested="alpha\n"))


def _wait_for(predicate: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _alive(pid: int) -> bool:
    """Running (a killed process not yet reaped by its new parent is a zombie: not alive)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_queued_build_is_cancelled_at_once_and_never_runs(
    app: Codenv, admin: Actor, fake: FakeInstaller, newest: str
) -> None:
    app.queue = HeldQueue()
    _create(app, admin, newest)
    (build_id,) = app.queue.jobs

    cancelled = builds.cancel_build(app, admin, build_id)
    assert cancelled.status == "cancelled"
    from codenv.services.build_jobs import run_build

    run_build(app, build_id)
    assert fake.calls == []
    assert builds.get_build(app, admin, build_id).status == "cancelled"
    with pytest.raises(Conflict, match="already cancelled"):
        builds.cancel_build(app, admin, build_id)


def _sleeping_install(started: threading.Event, marker: str, boxed: bool) -> object:
    """An install that runs a real process tree (a shell and its child) until killed."""

    def hook(run: Run) -> None:
        started.set()
        where = run if boxed else replace(run, box=None)
        script = f"sleep {marker} & wait"
        run_logged("installing", ["sh", "-c", script], where, clean_environ({}))

    return hook


def _running(marker: str) -> list[int]:
    """Processes whose command line holds `marker` (zombies, already dead, left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and _alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("boxed", [True, False], ids=["in-the-sandbox", "unsandboxed"])
def test_cancelling_a_running_build_kills_its_processes_and_keeps_the_env(
    tmp_path: Path, fake: FakeInstaller, admin: Actor, newest: str, boxed: bool
) -> None:
    app = open_fake(tmp_path / "home", fake, queue="threads")
    try:
        _create(app, admin, newest)
        _wait_for(lambda: envs.show_env(app, admin, "demo").active_revision == 1)
        started, marker = threading.Event(), f"{60 + os.getpid() % 1000 / 1000:.3f}"
        fake.hooks["install"] = _sleeping_install(started, marker, boxed)  # type: ignore[assignment]
        envs.save_spec(app, admin, "demo", SpecChanges(add=("beta",)))
        build_id = builds.request_update(app, admin, "demo").build_id
        assert build_id is not None
        assert started.wait(20)
        _wait_for(lambda: _running(marker) != [])

        assert builds.cancel_build(app, admin, build_id).status == "running"
        _wait_for(lambda: builds.get_build(app, admin, build_id).finished)

        assert builds.get_build(app, admin, build_id).status == "cancelled"
        _wait_for(lambda: _running(marker) == [])  # everything the installer started is gone
        layout = EnvLayout.of(app.settings.envs_dir, "demo")
        assert not layout.revision(2).exists()
        assert (envs.show_env(app, admin, "demo").active_revision, layout.current_number()) == (
            1,
            1,
        )
        assert "cancelled" in logs.read_log(app, admin, build_id)[0]
        fake.hooks.clear()
        retry = builds.request_update(app, admin, "demo").build_id
        assert retry is not None
        app.queue.wait(retry)
        assert builds.get_build(app, admin, retry).status == "succeeded"
    finally:
        app.close()


def test_only_those_who_may_update_cancel(app: Codenv, admin: Actor, newest: str) -> None:
    app.queue = HeldQueue()
    _create(app, admin, newest)
    (build_id,) = app.queue.jobs
    user = accounts.create_user(app, admin, "eve", "a-long-password-1")
    permissions.set_permissions(app, admin, "demo", usable_by_all=True)
    eve = load_actor(app, user.id)
    with pytest.raises(PermissionDenied):
        builds.cancel_build(app, eve, build_id)
    assert builds.get_build(app, admin, build_id).status == "queued"


def test_rollback_commits_before_it_switches(
    app: Codenv, admin: Actor, newest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start-up reconciliation running in the middle of a rollback (another process) must
    not undo it: the database is changed first, so reconciliation agrees with the rollback."""
    _create(app, admin, newest)
    envs.save_spec(app, admin, "demo", SpecChanges(add=("beta",)))
    builds.request_update(app, admin, "demo")
    layout = EnvLayout.of(app.settings.envs_dir, "demo")
    assert layout.current_number() == 2
    real_switch = EnvLayout.switch_current

    def switch_with_a_concurrent_recovery(self: EnvLayout, number: int) -> None:
        recover(app)  # another process starting up now
        real_switch(self, number)

    monkeypatch.setattr(EnvLayout, "switch_current", switch_with_a_concurrent_recovery)
    revisions.rollback(app, admin, "demo", 1)
    assert layout.current_number() == 1
    assert envs.show_env(app, admin, "demo").active_revision == 1


def test_a_build_whose_process_died_is_failed_at_start_up(
    tmp_path: Path, app: Codenv, admin: Actor, fake: FakeInstaller, newest: str
) -> None:
    app.queue = HeldQueue()
    _create(app, admin, newest)
    (build_id,) = app.queue.jobs
    with app.db.session() as session:
        row = session.get(BuildRow, build_id)
        assert row is not None
        # Claimed here by a process now gone; its lease has long to run: this host knows.
        host = socket.gethostname()
        row.status, row.holder = "running", f"{host}:999999:1"
        row.worker, row.host = f"codenv-999999@{host}", host
        row.lease_expires_at = utcnow() + timedelta(hours=1)
    app.close()
    reopened = open_fake(tmp_path / "home", fake)
    build = builds.get_build(reopened, admin, build_id)
    assert build.status == "failed"
    assert build.error is not None and "stopped before it finished" in build.error
    assert f"codenv-999999@{host} on host {host}" in build.error
    reopened.close()
