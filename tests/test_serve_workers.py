"""`codenv serve --workers N` on the embedded default (SQLite, local home): several server
processes on one port, one initial admin, builds run by the worker that queued them and left
alone by the others' start-up recovery, and SQLite holding up under 20 concurrent writers and
readers (no "database is locked" ever reaches a user)."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import func, select

from codenv.cli.serve_cmd import default_workers
from codenv.http.app import create_app
from codenv.services.app import open_codenv
from codenv.settings import load_settings
from codenv.storage.models import BuildRow, UserRow
from support.pkgindex import PackageIndex
from support.server import RunningServer, serving_process, wait_for_build

pytestmark = pytest.mark.xdist_group("serve-workers")
WORKERS = 2
CLIENTS = 20
ROUNDS = 12


def worker_pids(server_pid: int) -> set[int]:
    """The processes `codenv serve` started to serve (uvicorn's workers, not
    multiprocessing's resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server_pid and b"resource_tracker" not in command:
            found.add(int(entry.name))
    return found


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("workers") / "home"
    with serving_process(home, sample_index.url, workers=WORKERS) as running:
        yield running


@pytest.fixture(scope="module")
def token(served: RunningServer) -> str:
    return served.admin_token()


def test_default_is_one_process_per_core_at_most_four(monkeypatch: pytest.MonkeyPatch) -> None:
    for cores, expected in ((1, 1), (2, 2), (3, 3), (16, 4)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert default_workers() == expected


def test_workers_share_one_node_and_one_admin(served: RunningServer) -> None:
    assert served.pid is not None
    assert len(worker_pids(served.pid)) == WORKERS
    with served.app.db.session() as session:
        assert session.scalar(select(func.count()).where(UserRow.name == "admin")) == 1
    # A session started on one worker is honoured by every other (sessions are rows).
    browser = served.login("admin", "admin-password-for-tests")
    assert all(browser.get("/api/v1/me").status_code == 200 for _ in range(20))


def test_builds_run_in_the_worker_that_queued_them(
    served: RunningServer, token: str, newest: str
) -> None:
    assert served.pid is not None
    client = served.client(token)
    queued = [
        client.post("/api/v1/envs", json={"name": f"w-{i}", "python": newest}).json()["build_id"]
        for i in range(3)
    ]
    # Another process's start-up recovery (a restarted worker's, a CLI command's) while they
    # are queued or running: their holders are alive, so it leaves them alone.
    open_codenv(load_settings(served.app.settings.home, {"CODENV_INDEX_URL": "x"})).close()
    for build_id in queued:
        assert wait_for_build(client, build_id)["status"] == "succeeded"
    with served.app.db.session() as session:
        holders = session.scalars(select(BuildRow.holder).where(BuildRow.id.in_(queued))).all()
    assert {int(holder.split(":")[1]) for holder in holders} <= worker_pids(served.pid)


def _write(client: httpx.Client, who: int, round_: int, env: str) -> list[httpx.Response]:
    name = f"u{who}-{round_}"
    return [
        client.post("/api/v1/groups", json={"name": f"g{who}-{round_}"}),
        client.post("/api/v1/users", json={"name": name, "groups": [f"g{who}-{round_}"]}),
        client.patch(f"/api/v1/envs/{env}/spec", json={"description": f"by {name}"}),
        client.put(f"/api/v1/envs/{env}/permissions", json={"usable_by_all": round_ % 2 == 0}),
    ]


def _read(client: httpx.Client, env: str) -> list[httpx.Response]:
    paths = ["/api/v1/envs", f"/api/v1/envs/{env}", f"/api/v1/envs/{env}/builds"]
    return [client.get(path) for path in [*paths, "/api/v1/users", "/api/v1/audit"]]


def test_twenty_concurrent_writers_and_readers_never_see_a_locked_database(
    served: RunningServer, token: str, newest: str
) -> None:
    setup = served.client(token)
    created = setup.post("/api/v1/envs", json={"name": "busy", "python": newest})
    wait_for_build(setup, created.json()["build_id"])
    answers: list[httpx.Response] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def client_loop(who: int) -> None:
        try:
            with served.client(token) as client:
                for round_ in range(ROUNDS):
                    got = _write(client, who, round_, "busy") if who % 2 else _read(client, "busy")
                    with lock:
                        answers.extend(got)
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    # A build runs meanwhile too: its worker writes its steps while the clients write.
    update = setup.post("/api/v1/envs/busy/update", json={"rebuild": True}).json()["build_id"]
    started = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(who,)) for who in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert not failures, failures
    assert len(answers) == CLIENTS * ROUNDS * 4 + CLIENTS // 2 * ROUNDS
    refused = [(a.request.url.path, a.status_code, a.text[:200]) for a in answers if a.is_error]
    assert not refused, refused
    assert not [a for a in answers if "locked" in a.text.lower()]
    assert wait_for_build(setup, update)["status"] == "succeeded"
    log = (served.app.settings.home.parent).glob("serve-*.log")
    assert not [path for path in log if "locked" in path.read_text().lower()]
    print(f"{len(answers)} requests from {CLIENTS} clients in {elapsed:.1f} s")


def test_a_server_process_sets_what_it_started_with_aside_from_the_collector(
    tmp_path: Path,
) -> None:
    """Full collections walked every object of the process (~100 ms, stalling its requests);
    what the server holds from its start is never garbage, so they no longer walk it."""
    settings = load_settings(tmp_path / "home", {"CODENV_INDEX_URL": "http://127.0.0.1:9/simple"})
    before, app = gc.get_freeze_count(), create_app(settings, settle_heap=True)

    async def started() -> None:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > before

    try:
        anyio.run(started)
    finally:
        gc.unfreeze()
