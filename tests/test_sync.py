"""A shared-nothing execution node following the database: a design home builds envs with real
uv from the loopback index; node B (a home of its own, the same PostgreSQL database) runs
`codenv sync --once` and installs the same locks from its own cache, offline once the index
is gone; what fails there keeps B's previous `current` and is reported by `codenv status`."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from codenv.backends.fake import FakeInstaller
from codenv.domain.spec import EnvSpec
from codenv.interpreters import Discovery
from codenv.services import envs
from codenv.services.actor import Actor
from codenv.services.app import open_codenv
from codenv.services.cluster import cluster_status
from codenv.settings import load_settings
from codenv.storage.models import CodeEnvRow, RevisionRow
from conftest import Node
from support.databases import fresh_database_url
from support.pkgindex import PackageIndex
from support.server import running_server
from support.workers import broker_queue, broker_url

LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted([d.metadata['Name'], d.version] for d in m.distributions())))"
)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    with fresh_database_url("postgresql", tmp_path) as url:
        yield url


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _in_current(node: Node, env: str) -> list[tuple[str, str]]:
    listed = json.loads(node.env_python_run(env, LIST_DISTRIBUTIONS))
    return sorted((_normalized(name), version) for name, version in listed)


def _built(node: Node, env: str) -> list[tuple[str, str]]:
    found = json.loads(node.run("installed", env, "--json").stdout)["packages"]
    return sorted((_normalized(p["name"]), p["version"]) for p in found)


def _by_env(report: dict[str, object]) -> dict[str, dict[str, object]]:
    envs = report["envs"]
    assert isinstance(envs, list)
    return {item["env"]: item for item in envs}


def _node_b(status: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    nodes = {node["name"]: node for node in status["nodes"]}
    return nodes["node-b"]


def _design_paths_only(design: Node, env: str) -> None:
    """The revision's plan names an interpreter path that no node but the design node has:
    B must match the interpreter by its version."""
    app = design.app()
    try:
        with app.db.session() as session:
            env_id = session.scalars(select(CodeEnvRow.id).where(CodeEnvRow.name == env)).one()
            row = session.scalars(select(RevisionRow).where(RevisionRow.env_id == env_id)).one()
            row.plan = {**row.plan, "interpreter": "/opt/design-node-only/bin/python3"}
    finally:
        app.close()


@pytest.mark.postgres
def test_a_second_node_installs_the_same_locks_offline_and_reports_them(
    tmp_path: Path, index: PackageIndex, database: str, pythons: Discovery
) -> None:
    newest, other = pythons.minors()[-1], pythons.minors()[-2]
    index.add_wheel("beta", "2.0", requires=["alpha>=1.0"])
    index.add_wheel("delta", "1.0")
    shared = {"CODENV_DATABASE_URL": database}
    # Retention 0: a revision is pruned once another is active (B must remove it too).
    design = Node(tmp_path / "design", index.url, {**shared, "CODENV_RETENTION": "0"})
    node_b = Node(tmp_path / "b", index.url, {**shared, "CODENV_NODE_NAME": "node-b"})
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("beta\n")
    design.run("create", "ml", "--python", newest, "-r", str(requirements))
    design.run("create", "tools", "--python", other, "--no-core-packages")
    design.run("save", "tools", "--add", "delta", "--update")
    _design_paths_only(design, "ml")

    first = node_b.run("sync", "--once", "--json")
    outcomes = _by_env(json.loads(first.stdout))
    assert {env: item["action"] for env, item in outcomes.items()} == {
        "ml": "installed",
        "tools": "installed",
    }
    assert outcomes["tools"]["holds"] == 2 and outcomes["ml"]["holds"] == 1
    for env in ("ml", "tools"):
        assert _in_current(node_b, env) == _in_current(design, env) == _built(design, env)
    assert not (node_b.home / "envs" / "tools" / "revisions" / "1").exists()  # pruned
    status = json.loads(design.run("status", "--json").stdout)
    assert _node_b(status)["envs"] == {"agreement": ["ml", "tools"], "behind": [], "failed": []}
    assert "ml" in node_b.run("sync", "--once").stdout  # nothing to do: held

    # New revisions: ml adds delta (in B's cache), tools adds a package B never saw.
    index.add_wheel("epsilon", "1.0")
    design.run("save", "ml", "--add", "delta", "--update")
    design.run("save", "tools", "--add", "epsilon", "--update")
    index.stop()

    second = node_b.run("sync", "--once", "--json", check=False)
    assert second.returncode == 4, second.stderr
    assert "tools" in second.stderr.splitlines()[-1]
    outcomes = _by_env(json.loads(second.stdout))
    assert outcomes["ml"]["action"] == "installed" and outcomes["ml"]["holds"] == 2
    assert _in_current(node_b, "ml") == _built(design, "ml")
    assert ("delta", "1.0") in _in_current(node_b, "ml")
    ml_log = (node_b.home / "builds" / "sync" / "ml.log").read_text()
    assert "installed from the shared cache (no index access needed)" in ml_log
    assert outcomes["ml"]["removed"] == [1]
    assert outcomes["tools"]["action"] == "failed"
    # uv asks the index (down) for the lock's pages, in no set order: epsilon's or delta's.
    assert "Failed to fetch" in str(outcomes["tools"]["error"])
    # B's tools keeps its revision 2 (pruned by the design node meanwhile: still B's current).
    assert outcomes["tools"]["holds"] == 2
    assert _in_current(node_b, "tools") == [("delta", "1.0")]
    assert (node_b.home / "envs" / "tools" / "revisions" / "2").is_dir()
    assert not (node_b.home / "envs" / "tools" / "revisions" / "3").exists()
    tools_log = (node_b.home / "builds" / "sync" / "tools.log").read_text()
    assert "some packages are not in the shared cache yet: installing from the index" in tools_log

    status = json.loads(design.run("status", "--json").stdout)
    envs = _node_b(status)["envs"]
    assert envs["agreement"] == ["ml"] and envs["behind"] == []
    assert [(item["env"], item["revision"]) for item in envs["failed"]] == [("tools", 3)]
    assert "Failed to fetch" in envs["failed"][0]["error"]


def test_without_once_it_follows_until_sigterm(tmp_path: Path, index: PackageIndex) -> None:
    node = Node(tmp_path / "home", index.url, {"CODENV_NODE_NAME": "follower"})
    process = node.popen("sync", "--interval", "1")
    try:
        assert process.stderr is not None
        lines = iter(process.stderr.readline, "")
        assert any("node follower: following the database every 1 s" in line for line in lines)
        time.sleep(1.5)  # a pass or two
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
    with running_server(node.home, index.url) as server:
        admin = server.client(server.admin_token())
        (listed,) = admin.get("/api/v1/status").json()["nodes"]
        assert (listed["name"], listed["poll_seconds"]) == ("follower", 1)
        admin.post("/api/v1/users", json={"name": "ana", "password": "ana-password-123"})
        ana = server.login("ana", "ana-password-123")
        assert ana.get("/api/v1/status").status_code == 403


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_status_counts_the_messages_waiting_in_the_broker(
    tmp_path: Path, kind: str, newest: str
) -> None:
    url = broker_url(kind)
    with broker_queue(url) as queue:
        environ = {"CODENV_BROKER_URL": url, "CODENV_BUILD_QUEUE": queue}
        fake = FakeInstaller()
        app = open_codenv(load_settings(tmp_path / "home", environ), installer=fake, editables=fake)
        try:
            admin = Actor.local_admin()
            envs.create_env(app, admin, "demo", EnvSpec(python=newest, requested="alpha"))
            found = cluster_status(app, admin)["queue"]
        finally:
            app.close()
    assert found == {"queued": 1, "broker": {"queue": queue, "messages": 1, "error": None}}
