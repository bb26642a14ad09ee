"""Login throttling that a forged X-Forwarded-For cannot reset, and that cannot lock a user out
for everyone; proxy headers believed only from the proxies an administrator lists.

Over real HTTP (the server on loopback, run as `codenv serve` runs it), then the rules of
`forwarded_client` and of the per-source budget on the service.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from codenv.domain.errors import InvalidInput
from codenv.http.auth import forwarded_client
from codenv.services import node_settings
from codenv.services.actor import Actor, AuthenticationFailed, TooManyAttempts
from codenv.services.app import Codenv
from codenv.services.authentication import LoginPolicy, authenticate_password
from codenv.storage.models import utcnow
from conftest import Node
from support.access import PASSWORD, opened, user_in
from support.pkgindex import PackageIndex
from support.server import ADMIN_PASSWORD, RunningServer, free_port, running_server

ADMIN = Actor.local_admin()
NO_INDEX = "http://127.0.0.1:9/simple"


@pytest.fixture
def server(tmp_path: Path, sample_index: PackageIndex) -> Iterator[RunningServer]:
    with running_server(tmp_path / "home", sample_index.url) as running:
        user_in(running.app, ADMIN, "ada")
        yield running


def attempt(server: RunningServer, password: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = httpx.post(
        server.url + "/api/v1/session",
        json={"name": "ada", "password": password},
        headers=headers,
    )
    return response.status_code


def failed_login_sources(server: RunningServer) -> list[str]:
    admin = server.client(server.admin_token())
    entries = admin.get("/api/v1/audit", params={"action": "login.failed"}).json()
    return sorted({entry["source"] for entry in entries})


def test_a_forged_header_from_an_untrusted_peer_changes_nothing(server: RunningServer) -> None:
    for number in range(5):
        assert attempt(server, "wrong password", f"198.51.100.{number}") == 401
    # Blocked: every further guess, whatever address it claims to come from.
    for number in range(5, 17):
        assert attempt(server, "wrong password", f"198.51.100.{number}") == 429
    assert attempt(server, PASSWORD, "198.51.100.200") == 429
    assert failed_login_sources(server) == ["127.0.0.1"]


def test_a_trusted_proxy_says_who_the_client_is(server: RunningServer) -> None:
    admin = server.client(server.admin_token())
    saved = admin.put("/api/v1/settings/trusted-proxies", json={"proxies": ["127.0.0.0/8"]})
    assert saved.status_code == 200 and saved.json()["trusted_proxies"] == ["127.0.0.0/8"]
    for _ in range(5):
        # What the client wrote itself (left) is not believed; what the proxy appended is.
        assert attempt(server, "wrong password", "192.0.2.66, 203.0.113.5") == 401
    assert attempt(server, PASSWORD, "203.0.113.5") == 429
    # The same user from another address is not locked out.
    assert attempt(server, PASSWORD, "203.0.113.6") == 200
    assert failed_login_sources(server) == ["203.0.113.5"]
    refused = admin.put("/api/v1/settings/trusted-proxies", json={"proxies": ["a proxy"]})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "proxies"
    plain = server.login("ada", PASSWORD)
    denied = plain.put("/api/v1/settings/trusted-proxies", json={"proxies": []})
    assert denied.status_code == 403


def test_codenv_serve_believes_no_forwarded_header(node: Node) -> None:
    """`codenv serve` itself: uvicorn must not take the client's address from a header."""
    port = free_port()
    node.environ_extra["CODENV_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    process = node.popen("serve", "--port", str(port))
    url = f"http://127.0.0.1:{port}/api/v1/session"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/login")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "no server"
                time.sleep(0.2)
        statuses = [
            httpx.post(
                url,
                json={"name": "admin", "password": "wrong password"},
                headers={"X-Forwarded-For": f"198.51.100.{number}"},
            ).status_code
            for number in range(7)
        ]
        assert statuses == [401] * 5 + [429] * 2
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_forwarded_client_reads_past_trusted_hops_only() -> None:
    proxies = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert forwarded_client("192.0.2.1", ["203.0.113.9"], proxies) == "192.0.2.1"
    assert forwarded_client("10.0.0.2", [], proxies) == "10.0.0.2"
    assert forwarded_client("10.0.0.2", ["203.0.113.9"], proxies) == "203.0.113.9"
    chain = ["6.6.6.6, 203.0.113.9", "10.1.1.1"]  # a client's forgery, then two proxies
    assert forwarded_client("10.0.0.2", chain, proxies) == "203.0.113.9"
    assert forwarded_client("::1", ["10.1.1.1, not-an-address"], proxies) == "::1"
    assert forwarded_client("10.0.0.2", ["10.0.0.3"], proxies) == "10.0.0.3"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Codenv]:
    with opened(tmp_path / "home", f"sqlite:///{tmp_path / 'codenv.db'}", NO_INDEX) as opened_app:
        yield opened_app


def test_one_source_cannot_guess_through_many_names(app: Codenv) -> None:
    user_in(app, ADMIN, "ada")
    start = utcnow()
    source_policy = LoginPolicy(free_attempts=4, drain_seconds=60)

    def login(name: str, source: str, seconds: float, password: str = "wrong password") -> Actor:
        return authenticate_password(
            app,
            name,
            password,
            source,
            source_policy=source_policy,
            now=start + timedelta(seconds=seconds),
        )

    for number, name in enumerate(("a1", "a2", "a3", "not a name!")):
        with pytest.raises(AuthenticationFailed):
            login(name, "192.0.2.1", number)
    with pytest.raises(TooManyAttempts):
        login("ada", "192.0.2.1", 5, PASSWORD)
    # Another address is not blocked for anyone, and a success does not refill the budget.
    assert login("ada", "192.0.2.2", 5, PASSWORD).name == "ada"
    # The budget refills with time: one failure forgotten per minute (3 after 197 s).
    assert login("ada", "192.0.2.1", 200, PASSWORD).name == "ada"
    for number in range(3):
        with pytest.raises(AuthenticationFailed):
            login(f"b{number}", "192.0.2.1", 201 + number)
    with pytest.raises(TooManyAttempts):
        login("ada", "192.0.2.1", 204, PASSWORD)


def test_trusted_proxies_are_checked_when_saved(app: Codenv) -> None:
    saved = node_settings.set_trusted_proxies(app, ADMIN, [" 10.0.0.7 ", "2001:db8::/32"])
    assert saved == ["10.0.0.7/32", "2001:db8::/32"]
    assert [str(n) for n in node_settings.trusted_proxies(app)] == saved
    with pytest.raises(InvalidInput, match="not an IP address"):
        node_settings.set_trusted_proxies(app, ADMIN, ["localhost"])
