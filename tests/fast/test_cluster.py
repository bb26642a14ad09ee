"""Execution nodes and `codenv status` on the fake installer: a design home and a node home on
one database. The node's pass installs each active revision, holds what it has, keeps its
`current` when an install fails, matches interpreters by version, removes what the database
no longer keeps; the status view sorts each node's envs into agreement, behind and failed,
and lists workers by their heartbeat. The real thing (uv, PostgreSQL, offline):
tests/test_sync.py."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from codenv.backends.base import Run
from codenv.backends.fake import FakeInstaller
from codenv.domain.errors import BuildFailed, Conflict, InvalidInput, PermissionDenied
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.envdirs.layout import EnvLayout
from codenv.services import builds, cluster, envs
from codenv.services.actor import Actor
from codenv.services.app import Codenv, open_codenv
from codenv.services.sync import SyncReport, node_name, sync_once
from codenv.settings import load_settings
from codenv.storage.models import BuildRow, CodeEnvRow, RevisionRow, utcnow
from codenv.storage.models_nodes import NodeRevisionRow, WorkerRow

NODE = "node-b"


def _open(home: Path, database: str, fake: FakeInstaller, **extra: str) -> Codenv:
    environ = {"CODENV_INDEX_URL": "http://127.0.0.1:9/simple", "CODENV_DATABASE_URL": database}
    return open_codenv(load_settings(home, {**environ, **extra}), "inline", fake, fake)


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.fixture
def design(tmp_path: Path, database: str) -> Iterator[Codenv]:
    opened = _open(tmp_path / "design", database, FakeInstaller(), CODENV_RETENTION="0")
    yield opened
    opened.close()


@pytest.fixture
def node_fake() -> FakeInstaller:
    return FakeInstaller()


@pytest.fixture
def node(tmp_path: Path, database: str, node_fake: FakeInstaller) -> Iterator[Codenv]:
    opened = _open(tmp_path / "node", database, node_fake)
    yield opened
    opened.close()


def _create(app: Codenv, admin: Actor, name: str, python: str) -> None:
    created = envs.create_env(app, admin, name, EnvSpec(python=python, requested="alpha\n"))
    assert builds.get_build(app, admin, created.build_id).status == "succeeded"


def _update(app: Codenv, admin: Actor, name: str, add: str) -> None:
    envs.save_spec(app, admin, name, SpecChanges(add=(add,)))
    assert builds.request_update(app, admin, name).build_id is not None


def _sync(node: Codenv) -> SyncReport:
    return sync_once(node, NODE, lambda _line: None)


def _actions(report: SyncReport) -> dict[str, str]:
    return {outcome.env: outcome.action for outcome in report.envs}


def _node_envs(design: Codenv, admin: Actor) -> dict[str, object]:
    status = cluster.cluster_status(design, admin)
    return {node["name"]: node["envs"] for node in status["nodes"]}[NODE]


def _fail_install(_run: Run) -> None:
    raise BuildFailed("installing failed: no such wheel in the cache")


def test_a_pass_installs_switches_records_then_holds(
    design: Codenv, node: Codenv, node_fake: FakeInstaller, admin: Actor, newest: str
) -> None:
    _create(design, admin, "demo", newest)
    first = _sync(node)
    assert _actions(first) == {"demo": "installed"}
    layout = EnvLayout.of(node.settings.envs_dir, "demo")
    assert layout.current_number() == 1
    assert "alpha==1.0" in (layout.revision(1) / ".codenv" / "lock.txt").read_text()
    with node.db.session() as session:
        row = session.scalars(select(NodeRevisionRow)).one()
        assert (row.node, row.revision, row.wanted, row.state) == (NODE, 1, 1, "ok")
    assert _node_envs(design, admin) == {"agreement": ["demo"], "behind": [], "failed": []}

    node_fake.calls.clear()
    assert _actions(_sync(node)) == {"demo": "held"}
    assert node_fake.calls == []  # nothing installed, nothing asked of the installer
    # The design node's own home holds its revisions already: a pass there installs nothing,
    # and leaves alone the revision a build is making (no row yet).
    building = EnvLayout.of(design.settings.envs_dir, "demo").revision(2)
    building.mkdir()
    assert _actions(sync_once(design, "design", lambda _line: None)) == {"demo": "held"}
    assert building.is_dir()


def test_a_failed_install_keeps_the_current_and_is_reported(
    design: Codenv, node: Codenv, node_fake: FakeInstaller, admin: Actor, newest: str
) -> None:
    _create(design, admin, "demo", newest)
    _sync(node)
    _update(design, admin, "demo", "beta")
    assert _node_envs(design, admin)["behind"] == ["demo"]

    node_fake.hooks["install"] = _fail_install
    report = _sync(node)
    (outcome,) = report.failed
    assert (outcome.action, outcome.holds, outcome.revision) == ("failed", 1, 2)
    assert "no such wheel" in (outcome.error or "")
    layout = EnvLayout.of(node.settings.envs_dir, "demo")
    assert layout.current_number() == 1 and layout.revision(1).is_dir()
    assert not layout.revision(2).exists()
    failed = _node_envs(design, admin)["failed"]
    assert failed == [{"env": "demo", "revision": 2, "error": outcome.error}]

    node_fake.hooks.clear()
    assert _actions(_sync(node)) == {"demo": "installed"}
    assert layout.current_number() == 2
    # Revision 1 was pruned by the design node (retention 0): gone here once not current.
    assert not layout.revision(1).exists()
    assert _node_envs(design, admin) == {"agreement": ["demo"], "behind": [], "failed": []}


def test_interpreters_are_matched_by_version(
    design: Codenv, node: Codenv, admin: Actor, newest: str
) -> None:
    _create(design, admin, "demo", newest)
    _create(design, admin, "old", newest)
    with design.db.session() as session:
        rows = session.scalars(select(RevisionRow).join(CodeEnvRow)).all()
        for row in rows:
            python = "2.7.18" if row.env.name == "old" else row.plan["python_version"]
            row.plan = {**row.plan, "interpreter": "/design/only/python", "python_version": python}
    report = _sync(node)
    assert _actions(report) == {"demo": "installed", "old": "failed"}
    assert "Python 2.7 is not installed on this node" in (report.failed[0].error or "")
    venv = EnvLayout.of(node.settings.envs_dir, "demo").revision(1)
    assert "/design/only" not in (venv / ".codenv" / "plan.json").read_text()


def test_a_deleted_env_leaves_the_node(
    design: Codenv, node: Codenv, admin: Actor, newest: str
) -> None:
    _create(design, admin, "demo", newest)
    _sync(node)
    envs.delete_env(design, admin, "demo", delete_resources=True)
    assert _sync(node).removed_envs == ["demo"]
    assert not (node.settings.envs_dir / "demo").exists()


def test_one_agent_per_home_and_node_names(node: Codenv) -> None:
    from codenv.services import sync

    with sync._agent_lock(node), pytest.raises(Conflict, match="another `codenv sync`"):
        _sync(node)
    assert node_name("node-b.example:1") == "node-b.example:1"
    with pytest.raises(InvalidInput):
        node_name("two words")


def test_a_stop_mid_pass_leaves_the_env_as_it_was(
    design: Codenv, node: Codenv, node_fake: FakeInstaller, admin: Actor, newest: str
) -> None:
    _create(design, admin, "demo", newest)
    stop = threading.Event()

    def stopped(run: Run) -> None:
        stop.set()  # SIGTERM arrives while installing

    node_fake.hooks["create_venv"] = stopped
    report = sync_once(node, NODE, lambda _line: None, stop)
    assert report.stopped and report.envs == []
    assert not (node.settings.envs_dir / "demo" / "revisions" / "1").exists()


def test_status_lists_workers_by_heartbeat_claimed_builds_and_the_queue(
    tmp_path: Path, database: str, admin: Actor
) -> None:
    app = _open(tmp_path / "w", database, FakeInstaller(), CODENV_LEASE_SECONDS="3")
    try:
        heartbeat = cluster.start_worker_heartbeat(app, "celery@a", "a", ["codenv-builds"], 2)
        with app.db.session() as session:
            dead = utcnow() - timedelta(minutes=5)
            session.add(
                WorkerRow(
                    name="celery@b",
                    host="b",
                    queues=["q"],
                    concurrency=1,
                    started_at=dead,
                    last_seen_at=dead,
                )
            )
            lease = utcnow() + timedelta(seconds=3)
            session.add(
                BuildRow(
                    id=uuid.uuid4().hex,
                    env_id=None,
                    env_name="x",
                    status="running",
                    requested_by="admin",
                    worker="celery@a",
                    host="a",
                    lease_expires_at=lease,
                )
            )
            for _ in range(2):
                session.add(
                    BuildRow(
                        id=uuid.uuid4().hex,
                        env_id=None,
                        env_name="y",
                        status="queued",
                        requested_by="admin",
                    )
                )
        with app.db.session() as session:
            before = session.get_one(WorkerRow, "celery@a").last_seen_at
        time.sleep(1.3)  # a beat every lease/3
        status = cluster.cluster_status(app, admin)
        alive = {worker["name"]: worker["alive"] for worker in status["workers"]}
        assert alive == {"celery@a": True, "celery@b": False}
        with app.db.session() as session:
            assert session.get_one(WorkerRow, "celery@a").last_seen_at > before
        (claimed,) = status["builds"]
        assert (claimed["worker"], claimed["host"]) == ("celery@a", "a")
        assert 0 < claimed["expires_in_seconds"] <= 3
        assert status["queue"] == {"queued": 2, "broker": None}
        heartbeat.stop()
        names = [worker["name"] for worker in cluster.cluster_status(app, admin)["workers"]]
        assert names == ["celery@b"]  # stopped cleanly: no longer listed
        with pytest.raises(PermissionDenied):
            cluster.cluster_status(app, Actor(name="bob"))
    finally:
        app.close()


def test_an_unreachable_broker_is_reported_not_raised(
    tmp_path: Path, database: str, admin: Actor
) -> None:
    broker = {"CODENV_BROKER_URL": "redis://127.0.0.1:9/0"}
    app = _open(tmp_path / "b", database, FakeInstaller(), **broker)
    try:
        found = cluster.cluster_status(app, admin)["queue"]["broker"]
        assert found["queue"] == "codenv-builds" and found["messages"] is None
        assert "127.0.0.1:9" in found["error"]
    finally:
        app.close()
