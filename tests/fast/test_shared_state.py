"""What several servers on one database share: build logs (copied into the database as the
build writes them, read from there) and the node's runtime settings (imported once from
config/server.json). The two-server test over HTTP is tests/test_shared_state.py."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select

from codenv.backends.fake import FakeInstaller
from codenv.domain.errors import PermissionDenied
from codenv.domain.nodes import NodeKind
from codenv.domain.spec import EnvSpec
from codenv.services import builds, dss_code_envs, envs, log_store, logs, node_settings
from codenv.services.actor import Actor
from codenv.services.app import Codenv, open_codenv
from codenv.services.log_store import ShippedLog
from codenv.services.node_settings_store import stored_settings
from codenv.settings import load_settings
from codenv.storage.db import Database
from codenv.storage.models import BuildRow
from codenv.storage.models_shared import BuildLogChunkRow, BuildLogRow
from fast.conftest import open_fake
from support.databases import database_url  # noqa: F401


@pytest.fixture(autouse=True)
def quick_shipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_store, "SHIP_INTERVAL", 0.05)


def _build_row(app: Codenv, status: str = "running") -> str:
    build_id = uuid.uuid4().hex
    with app.db.session() as session:
        session.add(
            BuildRow(id=build_id, env_id=None, env_name="gone", status=status, requested_by="admin")
        )
    return build_id


def _stored(app: Codenv, build_id: str) -> bytes:
    with app.db.session() as session:
        chunks = session.scalars(
            select(BuildLogChunkRow)
            .where(BuildLogChunkRow.build_id == build_id)
            .order_by(BuildLogChunkRow.start)
        ).all()
        position = 0
        for chunk in chunks:
            assert chunk.start == position, "chunks overlap or leave a gap"
            position += len(chunk.data)
        return b"".join(chunk.data for chunk in chunks)


def _wait_for(predicate: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_a_builds_log_is_read_from_the_database(app: Codenv, admin: Actor, newest: str) -> None:
    envs.create_env(app, admin, "demo", EnvSpec(python=newest, requested="alpha\n"))
    (build,) = builds.list_builds(app, admin, "demo")
    path = builds.log_path(app, build.id)
    written = path.read_bytes()
    assert b"==> " in written and _stored(app, build.id) == written
    assert log_store.log_state(app.db, build.id).closed  # type: ignore[union-attr]

    path.unlink()  # another server has no such file: the database is what it reads
    text, end = logs.read_log(app, admin, build.id)
    assert text.encode() == written and end == len(written)
    middle = len(written) // 2
    assert logs.read_log(app, admin, build.id, middle) == (written[middle:].decode(), end)
    assert logs.read_log(app, admin, build.id, end + 10) == ("", end + 10)
    assert "".join(logs.follow_log(app, admin, build.id)).encode() == written
    (listed,) = dss_code_envs.env_logs(app, admin, "demo")
    assert listed.size == len(written) and listed.modified_ms > 0
    assert dss_code_envs.env_log(app, admin, "demo", build.id).encode() == written


def test_the_shipper_copies_whole_characters_as_they_come_and_the_rest_at_close(
    app: Codenv,
) -> None:
    build_id = _build_row(app)
    log = ShippedLog(app.db, build_id, builds.log_path(app, build_id))
    log.write("first line")
    _wait_for(lambda: _stored(app, build_id) == b"first line\n")
    with log.path.open("ab") as raw:  # a writer halfway through "é"
        raw.write(b"caf\xc3")
    _wait_for(lambda: _stored(app, build_id) == b"first line\ncaf")
    time.sleep(0.2)
    assert _stored(app, build_id) == b"first line\ncaf", "half a character was copied"
    with log.path.open("ab") as raw:
        raw.write(b"\xa9")
    log.write(" and more")
    assert not log_store.log_state(app.db, build_id).closed  # type: ignore[union-attr]
    log.close()
    assert _stored(app, build_id).decode() == "first line\ncafé and more\n"
    assert log_store.log_state(app.db, build_id).closed  # type: ignore[union-attr]


def test_a_big_burst_goes_in_bounded_chunks_and_reads_in_pieces(
    app: Codenv, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_store, "MAX_CHUNK_BYTES", 1000)
    build_id = _build_row(app, status="succeeded")
    log = ShippedLog(app.db, build_id, builds.log_path(app, build_id))
    line = "é" * 299  # 598 bytes and a newline: chunks are cut between characters
    for _ in range(20):
        log.write(line)
    log.close()
    whole = (line + "\n") * 20
    assert _stored(app, build_id).decode() == whole
    with app.db.session() as session:
        sizes = [len(row.data) for row in session.scalars(select(BuildLogChunkRow))]
    assert max(sizes) <= 1000 and len(sizes) >= 12
    read, offset = "", 0
    while True:
        text, offset = log_store.read_log_text(app, build_id, offset, 777, finished=True)
        if not text:
            break
        assert len(text.encode()) <= 777 and "\ufffd" not in text
        read += text
    assert read == whole


def test_another_writer_appends_at_the_stored_end(app: Codenv, tmp_path: Path) -> None:
    """As a server on another host that fails a build whose worker was lost: its own (new)
    file, its lines after the worker's."""
    build_id = _build_row(app)
    worker = ShippedLog(app.db, build_id, builds.log_path(app, build_id))
    worker.write("installing")
    worker.close()
    reaper = ShippedLog(app.db, build_id, tmp_path / "elsewhere" / f"{build_id}.log")
    reaper.write("failed: the worker stopped renewing its lease")
    reaper.close()
    assert _stored(app, build_id) == b"installing\nfailed: the worker stopped renewing its lease\n"


def test_writers_on_two_hosts_at_once_never_overlap(
    database_url: str,  # noqa: F811
    tmp_path: Path,
    fake: FakeInstaller,
) -> None:
    """A worker that lost its lease still writing while a reaper elsewhere writes: every
    line stored once, the chunks end to end."""
    settings = load_settings(
        tmp_path / "home",
        {"CODENV_INDEX_URL": "http://127.0.0.1:9/simple", "CODENV_DATABASE_URL": database_url},
    )
    app = open_codenv(settings, "inline", installer=fake, editables=fake)
    try:
        build_id = _build_row(app)
        writers = [
            ShippedLog(app.db, build_id, tmp_path / name / f"{build_id}.log")
            for name in ("host-a", "host-b")
        ]

        def write(log: ShippedLog, name: str) -> None:
            for number in range(40):
                log.write(f"{name} {number}")
                time.sleep(0.005)
            log.close()

        threads = [
            threading.Thread(target=write, args=(log, name))
            for log, name in zip(writers, ("a", "b"), strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        lines = _stored(app, build_id).decode().splitlines()
        assert sorted(lines) == sorted(f"{n} {i}" for n in "ab" for i in range(40))
        assert [line for line in lines if line[0] == "a"] == [f"a {i}" for i in range(40)]
    finally:
        app.close()


def test_after_a_restart_the_lines_never_copied_are_copied(app: Codenv) -> None:
    build_id = _build_row(app)
    path = builds.log_path(app, build_id)
    first = ShippedLog(app.db, build_id, path)
    first.write("copied")
    _wait_for(lambda: _stored(app, build_id) == b"copied\n")
    with path.open("a") as file:  # written, then the process died before its next copy
        file.write("not copied yet\n")
    recovery = ShippedLog(app.db, build_id, path)
    recovery.write("failed")
    recovery.close()
    assert _stored(app, build_id) == b"copied\nnot copied yet\nfailed\n"


def test_old_builds_are_read_from_their_file(app: Codenv, admin: Actor, newest: str) -> None:
    envs.create_env(app, admin, "demo", EnvSpec(python=newest, requested="alpha\n"))
    (build,) = builds.list_builds(app, admin, "demo")
    path = builds.log_path(app, build.id)
    with app.db.session() as session:  # as logged before the upgrade: a file only
        session.delete(session.get(BuildLogRow, build.id))
    assert log_store.log_state(app.db, build.id) is None
    written = path.read_bytes()
    assert logs.read_log(app, admin, build.id) == (written.decode(), len(written))
    assert logs.read_log(app, admin, build.id, 5)[0] == written[5:].decode()
    (listed,) = dss_code_envs.env_logs(app, admin, "demo")
    assert listed.size == len(written)


def test_a_finished_builds_reader_waits_for_the_last_lines(
    app: Codenv, admin: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_store, "SHIP_INTERVAL", 30)  # nothing copied but at close
    build_id = _build_row(app, status="failed")
    log = ShippedLog(app.db, build_id, builds.log_path(app, build_id))
    log.write("==> failed: the active revision is unchanged")
    timer = threading.Timer(0.3, log.close)
    timer.start()
    started = time.monotonic()
    text, _ = log_store.read_log_text(app, build_id, 0, 1000, finished=True)
    assert text == "==> failed: the active revision is unchanged\n"
    assert 0.25 < time.monotonic() - started < log_store.SETTLE_SECONDS
    timer.join()


def test_a_log_whose_writer_died_is_not_waited_for_twice(
    app: Codenv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_store, "SETTLE_SECONDS", 0.3)
    build_id = _build_row(app, status="failed")
    with app.db.session() as session:
        session.add(BuildLogRow(build_id=build_id, size=0, closed=False))
    started = time.monotonic()
    assert log_store.read_log_text(app, build_id, 0, 100, finished=True) == ("", 0)
    assert time.monotonic() - started >= 0.3
    assert log_store.log_state(app.db, build_id).closed  # type: ignore[union-attr]
    started = time.monotonic()
    log_store.read_log_text(app, build_id, 0, 100, finished=True)
    assert time.monotonic() - started < 0.2


# --- node settings ------------------------------------------------------------------------


def _write_config(home: Path, config: dict[str, object]) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "server.json").write_text(json.dumps(config))


def _migrate_to(url: str, revision: str) -> None:
    """The database as an older codenv left it."""
    from importlib import resources

    database = Database(url)
    config = Config()
    location = resources.files("codenv.storage").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    database.dispose()


def test_runtime_settings_move_from_the_file_into_the_database_once(
    tmp_path: Path, fake: FakeInstaller, admin: Actor
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _migrate_to(f"sqlite:///{home / 'codenv.db'}", "0011")  # before the upgrade
    before = {
        "nodeType": "api",
        "trustedProxies": ["10.0.0.0/8"],
        "codeEnvsSettings": {
            "allowRequests": True,
            "pipInstallExtraOptions": ["--timeout", "30"],
            "sandboxLimits": {"processes": 64},
        },
    }
    _write_config(home, before)
    app = open_fake(home, fake)
    try:
        assert node_settings.node_kind(app) is NodeKind.API
        assert node_settings.requests_allowed(app)
        assert [str(n) for n in node_settings.trusted_proxies(app)] == ["10.0.0.0/8"]
        assert node_settings.code_envs_settings(app)["pipInstallExtraOptions"] == [
            "--timeout",
            "30",
        ]
        assert stored_settings(app) == {
            "nodeType": "api",
            "trustedProxies": ["10.0.0.0/8"],
            "codeEnvsSettings.allowRequests": True,
            "codeEnvsSettings.pipInstallExtraOptions": ["--timeout", "30"],
        }
        # Read once: later edits of the file change only what a host starts with.
        _write_config(
            home,
            {"nodeType": "design", "codeEnvsSettings": {"sandboxLimits": {"processes": 32}}},
        )
        assert node_settings.node_kind(app) is NodeKind.API
        assert node_settings.requests_allowed(app)
        assert node_settings.code_envs_settings(app)["sandboxLimits"] == {"processes": 32}
        node_settings.set_requests_allowed(app, admin, False)
        with pytest.raises(PermissionDenied):
            node_settings.set_requests_allowed(app, Actor(name="someone", user_id=7), True)
        assert "allowRequests" not in (home / "config" / "server.json").read_text()
    finally:
        app.close()
    other = open_fake(home, fake)  # another process on the same database
    try:
        assert not node_settings.requests_allowed(other)
        assert node_settings.node_kind(other) is NodeKind.API
    finally:
        other.close()


def test_processes_starting_together_import_the_file_once(
    tmp_path: Path, fake: FakeInstaller
) -> None:
    home = tmp_path / "home"
    _write_config(home, {"codeEnvsSettings": {"allowRequests": True}})
    opened = [open_fake(home, fake) for _ in range(4)]
    try:
        results: list[bool] = []
        barrier = threading.Barrier(len(opened))

        def read(app: Codenv) -> None:
            barrier.wait()
            results.append(node_settings.requests_allowed(app))

        threads = [threading.Thread(target=read, args=(app,)) for app in opened]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [True] * len(opened)
    finally:
        for app in opened:
            app.close()
