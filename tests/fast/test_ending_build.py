"""A build whose end is recorded still holds its env's slot for its last steps: who acts on the
env right after waiting for the build (delete, roll back) waits for those, and is not told
that the env is being built (seen as a 409 from a DSS client deleting the env it had just
created with the create's own wait)."""

from __future__ import annotations

import threading
import time

import pytest

from codenv.domain.errors import Conflict
from codenv.domain.spec import EnvSpec
from codenv.jobs.liveness import holder_token
from codenv.services import builds, envs, revisions, slots
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.storage import queries
from codenv.storage.models import CodeEnvRow


def _built(app: Codenv, admin: Actor, name: str, *, twice: bool = False) -> tuple[int, str]:
    """An env built (inline; `twice`: rebuilt once more), and its last build."""
    last = envs.create_env(app, admin, name, EnvSpec("3.12", requested="alpha\n")).build_id
    if twice:
        last = builds.request_update(app, admin, name, rebuild=True).build_id
    with app.db.session() as session:
        env_id = session.query(CodeEnvRow.id).filter(CodeEnvRow.name == name).scalar()
    return env_id, last


def _hold(app: Codenv, env_id: int, token: str, release_after: float | None) -> None:
    assert queries.take_build_slot(app.db, env_id, token, holder_token(), slots.lease_until(app))
    if release_after is not None:

        def release() -> None:
            with app.db.session() as session:
                queries.release_build_slot(session, token)

        threading.Timer(release_after, release).start()


def test_delete_waits_for_an_ended_builds_last_steps(app: Codenv, admin: Actor) -> None:
    env_id, build_id = _built(app, admin, "demo")
    _hold(app, env_id, build_id, release_after=0.3)  # its end is recorded: "succeeded"
    started = time.monotonic()
    envs.delete_env(app, admin, "demo", delete_resources=True)
    assert 0.2 < time.monotonic() - started < slots.ENDING_SECONDS
    assert [info.name for info in envs.list_envs(app, admin)] == []


def test_rollback_waits_for_an_ended_builds_last_steps(app: Codenv, admin: Actor) -> None:
    env_id, build_id = _built(app, admin, "demo", twice=True)
    _hold(app, env_id, build_id, release_after=0.3)
    assert revisions.rollback(app, admin, "demo", 1).number == 1


def test_anything_else_holding_the_slot_is_refused_at_once(
    app: Codenv, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_id, build_id = _built(app, admin, "demo")
    _hold(app, env_id, "rollback-elsewhere", release_after=None)  # no build: not ending
    started = time.monotonic()
    with pytest.raises(Conflict, match="is being built"):
        envs.delete_env(app, admin, "demo", delete_resources=True)
    assert time.monotonic() - started < 1.0
    with app.db.session() as session:
        queries.release_build_slot(session, "rollback-elsewhere")
    # An ended build that never lets go of the slot is waited for no longer than ENDING_SECONDS.
    monkeypatch.setattr(slots, "ENDING_SECONDS", 0.3)
    _hold(app, env_id, build_id, release_after=None)
    with pytest.raises(Conflict):
        envs.delete_env(app, admin, "demo", delete_resources=True)
