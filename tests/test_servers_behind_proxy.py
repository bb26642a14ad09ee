"""Two `codenv serve` processes on one PostgreSQL database, each with its own home, behind one
address (a round-robin load balancer that skips an upstream refusing connections, as nginx's
`proxy_next_upstream error`): one console session serves requests landing on both; a build's
log followed by offset, a new connection per read, goes on through the surviving server when
the other is killed with SIGKILL mid-stream, with no gap and no repeated byte, to its last
line; a read in flight on the killed server fails at the client and, repeated through the
same address, gives the same answer."""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from support.balancer import Balancer
from support.databases import fresh_database_url
from support.pkgindex import PackageIndex
from support.samples import slow_archive
from support.server import ADMIN_PASSWORD, RunningServer, serving_process, session_csrf

pytestmark = pytest.mark.postgres
API = "/api/v1"
SLOW_SECONDS = 6  # the wheel build's sleep: the log streams for that long at least
DEADLINE_SECONDS = 60
DONE_LINE = re.compile(r"==> \[[0-9:.]+\] done: revision 1 is active")


def _upstream(balancer: Balancer, response: httpx.Response) -> int:
    """The server that answered: the balancer's route of the response's connection (open
    still: response hooks run before the body is read, streams until closed)."""
    stream = response.extensions["network_stream"]
    return balancer.upstream_of(stream.get_extra_info("client_addr")[1])


def _browser(balancer: Balancer, landed: list[int]) -> httpx.Client:
    """A client of the one address opening a new connection per request (each request is
    balanced anew); `landed` gets the server of each answer."""

    def record(response: httpx.Response) -> None:
        landed.append(_upstream(balancer, response))

    return httpx.Client(
        base_url=balancer.url,
        timeout=60,
        headers={"Connection": "close"},
        event_hooks={"response": [record]},
    )


def _console_login(browser: httpx.Client) -> None:
    page = browser.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None, page.text
    fields = {"name": "admin", "password": ADMIN_PASSWORD, "csrf": token.group(1)}
    posted = browser.post("/login", data=fields)
    assert posted.status_code == 303, posted.text
    browser.headers["X-CSRF-Token"] = session_csrf(browser)


def _runner(browser: httpx.Client, build_id: str, servers: list[RunningServer]) -> int:
    """The server running the build, from the worker its record names (codenv-<pid>@host)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        worker = browser.get(f"{API}/builds/{build_id}").json()["worker"]
        if worker:
            names = [f"codenv-{server.pid}@" for server in servers]
            return next(i for i, name in enumerate(names) if worker.startswith(name))
        time.sleep(0.1)
    raise AssertionError(f"build {build_id} was claimed by no server")


@dataclass
class InFlight:
    """A streamed read (the live log) drained by a thread of its own."""

    response: httpx.Response
    received: bytearray = field(default_factory=bytearray)
    error: httpx.HTTPError | None = None
    thread: threading.Thread | None = None

    def drain(self) -> None:
        try:
            for chunk in self.response.iter_raw():
                self.received += chunk
        except httpx.HTTPError as error:
            self.error = error
        finally:
            self.response.close()

    def wait(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the read in flight neither ended nor failed"


def _stream_on(client: httpx.Client, balancer: Balancer, path: str, server: int) -> InFlight:
    """The stream at `path`, opened through the balancer until it lands on `server`."""
    for _ in balancer.served:
        response = client.send(client.build_request("GET", path), stream=True)
        if _upstream(balancer, response) == server:
            response.raise_for_status()
            flight = InFlight(response)
            flight.thread = threading.Thread(target=flight.drain, daemon=True)
            flight.thread.start()
            return flight
        response.close()
    raise AssertionError(f"no connection of the balancer went to server {server}")


@dataclass
class Followed:
    """A log read by offset, one request (and connection) per read."""

    content: bytes = b""
    servers: list[int] = field(default_factory=list)  # the server of each read
    killed_at: int | None = None  # the reads done when the kill happened
    after_kill: int = 0  # bytes read after the kill
    seconds_to_end: float = 0.0  # from the kill to the last line


def _follow(
    browser: httpx.Client, landed: list[int], build_id: str, kill: Callable[[], None]
) -> Followed:
    """Reads until the build has finished; kills (once) when the log is live and reads have
    gone to both servers, and reads on from the same offset, whatever server answers."""
    followed, killed = Followed(), 0.0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        offset = len(followed.content)
        response = browser.get(f"{API}/builds/{build_id}/log", params={"offset": offset})
        response.raise_for_status()
        followed.servers.append(landed[-1])
        assert int(response.headers["X-Log-Offset"]) == offset + len(response.content)
        followed.content += response.content
        finished = response.headers["X-Build-Finished"] == "true"
        if followed.killed_at is not None:
            followed.after_kill += len(response.content)
        elif response.content and not finished and len(set(followed.servers)) == 2:
            kill()
            followed.killed_at, killed = len(followed.servers), time.monotonic()
        if finished:
            followed.seconds_to_end = time.monotonic() - killed
            return followed
        time.sleep(0.2)
    raise AssertionError(f"build {build_id} did not finish in {DEADLINE_SECONDS} s")


def _check_in_flight_retried(flight: InFlight, watcher: httpx.Client, written: bytes) -> None:
    """The read in flight on the killed server failed at the client; repeated through the
    balancer, it gives the answer it would have given: the whole log."""
    flight.wait()
    assert isinstance(flight.error, httpx.RemoteProtocolError), flight.error
    assert written.startswith(bytes(flight.received))
    retried = watcher.get(flight.response.url)
    assert retried.status_code == 200
    assert retried.content == written


def test_one_address_two_servers_one_killed_mid_stream_loses_nothing(
    tmp_path: Path, index: PackageIndex, newest: str
) -> None:
    archive = slow_archive(tmp_path / "slow", "slowpkg", "1.0", seconds=SLOW_SECONDS)
    shutil.copy(archive, index.directory / archive.name)
    landed: list[int] = []
    with (
        fresh_database_url("postgresql", tmp_path) as url,
        serving_process(tmp_path / "a", index.url, 1, {"CODENV_DATABASE_URL": url}) as a,
        serving_process(tmp_path / "b", index.url, 1, {"CODENV_DATABASE_URL": url}) as b,
        Balancer([a.url, b.url]) as balancer,
        _browser(balancer, landed) as browser,
        httpx.Client(base_url=balancer.url, timeout=60) as watcher,  # the stream's reader
    ):
        _console_login(browser)
        watcher.cookies = browser.cookies
        assert landed[0] != landed[1], "the login form and its post went to one server"
        for _ in range(4):
            assert browser.get(f"{API}/me").json()["name"] == "admin"
        assert set(landed[2:]) == {0, 1}

        asked = time.monotonic()
        spec = {"python": newest, "install_core_packages": False, "requested": "slowpkg"}
        created = browser.post(f"{API}/envs", json={"name": "slow", **spec})
        assert created.status_code == 202, created.text
        build_id = created.json()["build_id"]
        # The build runs in the server that took the request; the other one is killed.
        runner = _runner(browser, build_id, [a, b])
        victim = [a, b][1 - runner].pid
        assert victim is not None
        path = f"{API}/builds/{build_id}/log/stream"
        flight = _stream_on(watcher, balancer, path, 1 - runner)

        def kill() -> None:
            assert flight.thread is not None and flight.thread.is_alive()
            os.kill(victim, signal.SIGKILL)

        followed = _follow(browser, landed, build_id, kill)
        to_end = time.monotonic() - asked
        assert followed.killed_at is not None, "the build ended before the kill"
        assert set(followed.servers[: followed.killed_at]) == {0, 1}
        assert set(followed.servers[followed.killed_at :]) == {runner}
        assert followed.after_kill > 0, "nothing was read through the survivor"
        assert balancer.refused[1 - runner] > 0, "no request met the killed server"
        written = (tmp_path / "ab"[runner] / "builds" / f"{build_id}.log").read_bytes()
        assert followed.content == written, "the reads lost or repeated part of the log"
        assert DONE_LINE.search(followed.content.decode().splitlines()[-1])
        assert browser.get(f"{API}/builds/{build_id}").json()["status"] == "succeeded"
        _check_in_flight_retried(flight, watcher, written)

        # The session goes on through the survivor, and ends there for every server.
        assert browser.get(f"{API}/me").json()["name"] == "admin"
        assert browser.delete(f"{API}/session").status_code == 204
        assert browser.get(f"{API}/me").status_code == 401
        print(
            f"\nlog {len(written)} bytes in {len(followed.servers)} reads, "
            f"{followed.after_kill} bytes after the kill; last line {followed.seconds_to_end:.1f} s"
            f" after the kill, {to_end:.1f} s after the build was asked for; the read in flight"
            f" had {len(flight.received)} bytes; connections per server {balancer.served},"
            f" refused {balancer.refused}"
        )
