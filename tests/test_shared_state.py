"""Two `codenv serve` processes on one PostgreSQL database, each with its own home (as on two
hosts behind one address): a session started on one is a session on the other, a setting
changed through one is read by the other, and a build run by one streams its log, live and to
its last line, through the other, from the database (the other has no file of it)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from support.databases import fresh_database_url
from support.pkgindex import PackageIndex
from support.samples import slow_archive
from support.server import ADMIN_PASSWORD, RunningServer, serving_process, wait_for_build

pytestmark = pytest.mark.postgres
API = "/api/v1"


def _same_browser(client: httpx.Client, server: RunningServer) -> httpx.Client:
    """The browser of `client` (its cookies, its CSRF header) sent to another server."""
    other = httpx.Client(base_url=server.url, timeout=120, cookies=client.cookies)
    other.headers["X-CSRF-Token"] = client.headers["X-CSRF-Token"]
    return other


def _console_login_across(first: RunningServer, second: RunningServer) -> None:
    """The login form served by one server, posted to the other: the console works."""
    browser = httpx.Client(base_url=first.url, timeout=60)
    token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)
    assert token is not None
    browser.base_url = httpx.URL(second.url)
    posted = browser.post(
        "/login", data={"name": "admin", "password": ADMIN_PASSWORD, "csrf": token.group(1)}
    )
    assert posted.status_code == 303, posted.text
    browser.base_url = httpx.URL(first.url)
    assert browser.get("/").status_code == 200


def _follow_by_offset(client: httpx.Client, build_id: str) -> tuple[str, list[str]]:
    """The log read as the CLI reads it (offsets), and the pieces read while it ran."""
    offset, text, live = 0, "", []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        response = client.get(f"{API}/builds/{build_id}/log", params={"offset": offset})
        response.raise_for_status()
        finished = response.headers["X-Build-Finished"] == "true"
        offset = int(response.headers["X-Log-Offset"])
        text += response.text
        if response.text and not finished:
            live.append(response.text)
        if finished:
            return text, live
        time.sleep(0.1)
    raise AssertionError(f"build {build_id} did not finish")


def test_two_servers_share_sessions_settings_and_live_build_logs(
    tmp_path: Path, sample_index: PackageIndex, newest: str
) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    slow = slow_archive(sources, "slowpkg", "1.0", seconds=6)
    with (
        fresh_database_url("postgresql", tmp_path) as url,
        serving_process(tmp_path / "a", sample_index.url, 1, {"CODENV_DATABASE_URL": url}) as a,
        serving_process(tmp_path / "b", sample_index.url, 1, {"CODENV_DATABASE_URL": url}) as b,
    ):
        on_a = a.login("admin", ADMIN_PASSWORD)
        on_b = _same_browser(on_a, b)
        assert on_b.get(f"{API}/me").json()["name"] == "admin"
        _console_login_across(a, b)

        # A setting changed through A is B's setting at its next request.
        roots = on_a.put(f"{API}/settings/local-source-roots", json={"roots": [str(sources)]})
        assert roots.status_code == 200, roots.text
        assert on_b.get(f"{API}/settings").json()["allowed_local_source_roots"] == [
            str(sources.resolve())
        ]
        assert on_b.put(f"{API}/settings/requests", json={"allow": True}).status_code == 200
        assert on_a.get(f"{API}/settings").json()["allow_requests"] is True

        created = on_a.post(
            f"{API}/envs", json={"name": "demo", "python": newest, "install_core_packages": False}
        )
        assert created.status_code == 202, created.text
        assert wait_for_build(on_b, created.json()["build_id"])["status"] == "succeeded"
        saved = on_a.patch(f"{API}/envs/demo/spec", json={"add": [str(slow)], "update": True})
        assert saved.status_code == 200, saved.text
        build_id = saved.json()["update"]["build_id"]

        text, live = _follow_by_offset(on_b, build_id)
        assert live, "nothing of the log reached B while the build ran"
        assert re.search(r"==> \[[0-9:.]+\] done: revision 2 is active", text.splitlines()[-1])
        written = (tmp_path / "a" / "builds" / f"{build_id}.log").read_text("utf-8")
        assert text == written, "B's offsets lost or repeated part of the log"
        assert not (tmp_path / "b" / "builds" / f"{build_id}.log").exists()
        assert on_b.get(f"{API}/builds/{build_id}/log/stream").text == written

        # One session: ended through B, it is over on A too.
        assert on_b.delete(f"{API}/session").status_code == 204
        assert on_a.get(f"{API}/me").status_code == 401
