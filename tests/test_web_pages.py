"""The console's edges over plain HTTP: the HTML 404 page, the favicon, the readable audit log,
and the access log line every request writes."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from codenv.http.request_log import ACCESS_LOG
from codenv.services import node_settings, tokens
from codenv.services.actor import Actor
from support.pkgindex import PackageIndex
from support.server import (
    ADMIN_PASSWORD,
    RunningServer,
    console_login,
    post_form,
    running_server,
)

pytestmark = pytest.mark.xdist_group("web-pages")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-pages") / "home"
    with running_server(home, sample_index.url) as running:
        yield running


def test_unknown_console_urls_get_an_html_404_and_the_api_keeps_json(
    server: RunningServer,
) -> None:
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/no/such/page")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Not found" in page.text and "There is no page at /no/such/page" in page.text
        api = client.get("/api/v1/no-such-thing")
        assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_the_favicon_is_an_svg_from_the_package(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path in ("/favicon.ico", "/static/favicon.svg"):
            icon = client.get(path)
            assert icon.status_code == 200, path
            assert icon.headers["content-type"] == "image/svg+xml"
            assert icon.text.startswith("<svg")
        assert 'rel="icon" href="/static/favicon.svg"' in client.get("/login").text


def test_the_audit_log_shows_details_as_key_and_value(server: RunningServer) -> None:
    node_settings.set_install_options(
        server.app, Actor.local_admin(), ["--extra-index-url", "https://bob:hunter2@x.example/s"]
    )
    client = console_login(server, "admin", ADMIN_PASSWORD)
    page = client.get("/admin/audit", params={"action": "settings.*"})
    row = re.search(r"<tr data-row>.*?</tr>", page.text, re.S)
    assert row, page.text
    assert '<td class="nowrap">' in row.group(0)
    assert re.search(r"<dt>\w+</dt><dd><code>--extra-index-url https://bob:\*\*\*@", row.group(0))
    assert "hunter2" not in page.text and "&#34;" not in row.group(0)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_every_request_is_logged_with_method_path_status_and_time(
    server: RunningServer,
) -> None:
    captured = _Lines()
    ACCESS_LOG.addHandler(captured)
    try:
        with httpx.Client(base_url=server.url) as client:
            client.get("/no/such/page", params={"token": "secret-in-query"})
            client.get("/api/v1/envs")
        # The line is written once the response has gone out: a moment after the client has it.
        deadline = time.monotonic() + 5
        while not any("/api/v1/envs" in line for line in captured.lines):
            assert time.monotonic() < deadline, captured.lines
            time.sleep(0.02)
    finally:
        ACCESS_LOG.removeHandler(captured)
    assert any(
        re.fullmatch(r'127\.0\.0\.1 "GET /no/such/page HTTP/1\.1" 404 \d+\.\dms', line)
        for line in captured.lines
    ), captured.lines
    assert any('"GET /api/v1/envs HTTP/1.1" 401' in line for line in captured.lines)
    assert not any("secret-in-query" in line for line in captured.lines)


def test_a_tokens_expiry_is_changed_from_its_row(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    created = tokens.create_token(server.app, server_admin(server), name="row-expiry")
    page = post_form(client, f"/admin/tokens/{created.token.id}/expiry", {"expires_days": "7"})
    assert page.status_code == 200 and "now expires in 7 days" in page.text
    listed = {t.id: t for t in tokens.list_tokens(server.app, server_admin(server))}
    assert listed[created.token.id].expires_at is not None
    refused = post_form(client, f"/admin/tokens/{created.token.id}/expiry", {"expires_days": "x"})
    assert "the expiry is a number of days" in refused.text


def server_admin(server: RunningServer) -> Actor:
    """The console's `admin` user, as an Actor of the services."""
    from codenv.services import accounts
    from codenv.services.authentication import load_actor

    return load_actor(server.app, accounts.get_user(server.app, Actor.local_admin(), "admin").id)
