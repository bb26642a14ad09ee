"""The console's Administration pages: settings, users and groups, API tokens, requests, audit.

The request flow runs in a real browser from both sides (Debian's headless Chromium driven by
Playwright; skipped without it, outside CI); the rights and the forms are checked over plain
HTTP. Screenshots of the settings and requests pages go to docs/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from codenv.services import envs, node_settings
from codenv.services.actor import Actor
from support.access import PASSWORD, user_in
from support.browser import chromium, log_in, shot
from support.pkgindex import PackageIndex
from support.server import ADMIN_PASSWORD, RunningServer, console_login, post_form, running_server

pytestmark = pytest.mark.xdist_group("web-admin")
BUILD_TIMEOUT_MS = 120_000
ADMIN_PAGES = ("/admin/settings", "/admin/users", "/admin/requests", "/admin/audit")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-admin") / "home"
    with running_server(home, sample_index.url) as running:
        admin = Actor.local_admin()
        user_in(running.app, admin, "asker")
        user_in(running.app, admin, "plain")
        yield running


# Plain HTTP ---------------------------------------------------------------------------------


def test_admin_pages_need_a_login(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path in (*ADMIN_PAGES, "/admin/tokens"):
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login?next=%2Fadmin")


def test_a_non_admin_is_refused_admin_pages_and_forced_posts(server: RunningServer) -> None:
    client = console_login(server, "plain", PASSWORD)
    listing = client.get("/")
    assert 'href="/admin/tokens">API tokens</a>' in listing.text
    assert "Administration" not in listing.text
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "Not allowed" in response.text and "administrator" in response.text
    forced = [
        ("/admin/settings/requests", {"allow_requests": "on"}),
        ("/admin/settings/install-options", {"install_options": "--pre"}),
        ("/admin/users", {"name": "intruder", "password": "a long enough password"}),
        ("/admin/groups", {"name": "rogues", "administrator": "on"}),
        ("/admin/groups/members", {"group": "rogues", "user": "plain"}),
        ("/admin/requests/1/approve", {}),
        ("/admin/requests/1/reject", {"reason": "no"}),
    ]
    for path, data in forced:
        response = post_form(client, path, data)
        assert response.status_code == 403, (path, response.text)
        assert "Not allowed" in response.text
    admin = Actor.local_admin()
    assert not node_settings.requests_allowed(server.app)
    assert "intruder" not in [u.name for u in _users(server, admin)]
    # Someone else's token cannot be revoked (nor seen) by a non-admin.
    admin_client = console_login(server, "admin", ADMIN_PASSWORD)
    created = post_form(admin_client, "/admin/tokens", {"name": "admin-script"})
    token_id = re.search(r'data-token="(\d+)"', created.text)
    assert token_id
    refused = post_form(client, f"/admin/tokens/{token_id.group(1)}/revoke", {})
    assert refused.status_code == 404 and "no API token" in refused.text


def _users(server: RunningServer, admin: Actor) -> list[Any]:
    from codenv.services import accounts

    return accounts.list_users(server.app, admin)


def test_admin_forms_need_the_session_csrf_token(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    for token in ("", "wrong"):
        response = client.post(
            "/admin/settings/requests", data={"csrf": token, "allow_requests": "on"}
        )
        assert response.status_code == 403
        assert "security token is missing or out of date" in response.text


def test_everyone_manages_their_own_tokens(server: RunningServer) -> None:
    client = console_login(server, "plain", PASSWORD)
    page = client.get("/admin/tokens")
    assert page.status_code == 200 and "You have no API token yet" in page.text
    created = post_form(client, "/admin/tokens", {"name": "laptop"})
    assert created.status_code == 200
    secret = re.search(r"<code data-secret>(cdv_[^<]+)</code>", created.text)
    assert secret, created.text
    # The secret works on the API, and is never shown again.
    me = server.client(secret.group(1)).get("/api/v1/me")
    assert me.status_code == 200 and me.json()["name"] == "plain"
    again = client.get("/admin/tokens")
    assert secret.group(1) not in again.text and "laptop" in again.text
    token_id = re.search(r'data-token="(\d+)"', again.text)
    assert token_id
    revoked = post_form(client, f"/admin/tokens/{token_id.group(1)}/revoke", {})
    assert revoked.status_code == 200 and "was revoked" in revoked.text
    assert server.client(secret.group(1)).get("/api/v1/me").status_code == 401
    too_long = post_form(client, "/admin/tokens", {"name": "x" * 129})
    assert too_long.status_code == 422 and "at most 128 characters" in too_long.text


def test_settings_mask_credentials_and_show_errors_in_place(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    saved = post_form(
        client,
        "/admin/settings/install-options",
        {"install_options": "--extra-index-url https://bob:hunter2@pkgs.example/simple"},
    )
    assert saved.status_code == 200 and "were saved" in saved.text
    assert "hunter2" not in saved.text and "bob:***@pkgs.example" in saved.text
    stored = node_settings.code_envs_settings(server.app)["pipInstallExtraOptions"]
    assert "https://bob:hunter2@pkgs.example/simple" in stored
    # Sent back as shown (masked): kept, not overwritten with the mask.
    shown = re.search(r'name="install_options"[^>]*>([^<]*)</textarea>', saved.text)
    assert shown
    kept = post_form(client, "/admin/settings/install-options", {"install_options": shown[1]})
    assert "unchanged" in kept.text
    assert node_settings.code_envs_settings(server.app)["pipInstallExtraOptions"] == stored
    masked_edit = post_form(
        client,
        "/admin/settings/install-options",
        {"install_options": shown[1] + "\n--pre"},
    )
    assert masked_edit.status_code == 422 and "shows as ***" in masked_edit.text
    bad = post_form(client, "/admin/settings/install-options", {"install_options": "--target /"})
    assert bad.status_code == 422 and 'class="error"' in bad.text
    assert "--target /</textarea>" in bad.text
    cleared = post_form(client, "/admin/settings/install-options", {"install_options": ""})
    assert cleared.status_code == 200
    assert node_settings.code_envs_settings(server.app)["pipInstallExtraOptions"] == []
    audit = client.get("/admin/audit", params={"action": "settings.*"})
    assert audit.status_code == 200 and "settings.update" in audit.text
    assert "hunter2" not in audit.text


def test_users_and_groups(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    group = post_form(
        client,
        "/admin/groups",
        {"name": "builders", "description": "They build", "may_create_envs": "on"},
    )
    assert group.status_code == 200 and "Group builders was created" in group.text
    user = post_form(
        client,
        "/admin/users",
        {"name": "newbie", "display_name": "New Bie", "password": "a long enough password"},
    )
    assert user.status_code == 200 and "User newbie was created" in user.text
    member = post_form(client, "/admin/groups/members", {"group": "builders", "user": "newbie"})
    assert member.status_code == 200 and "newbie is now a member of builders" in member.text
    row = re.search(r'<tr data-row data-group="builders">.*?</tr>', member.text, re.S)
    assert row and "create envs" in row.group(0) and "newbie" in row.group(0)
    newbie = console_login(server, "newbie", "a long enough password")
    assert "New Python env" in newbie.get("/").text
    again = post_form(client, "/admin/users", {"name": "newbie", "password": "whatever long"})
    assert again.status_code == 409 and "already exists" in again.text
    assert 'value="newbie"' in again.text
    bad = post_form(client, "/admin/groups", {"name": "no spaces"})
    assert bad.status_code == 422 and "invalid group name" in bad.text.lower()


def test_rejecting_needs_a_reason(server: RunningServer, newest: str) -> None:
    from codenv.domain.spec import EnvSpec
    from codenv.services import requests
    from codenv.services.authentication import load_actor

    admin = Actor.local_admin()
    node_settings.set_requests_allowed(server.app, admin, True)
    try:
        plain = next(u for u in _users(server, admin) if u.name == "plain")
        asker = load_actor(server.app, plain.id, source="test")
        sent = requests.submit_request(server.app, asker, "unwanted", EnvSpec(python=newest))
        client = console_login(server, "admin", ADMIN_PASSWORD)
        empty = post_form(client, f"/admin/requests/{sent.id}/reject", {"reason": "  "})
        assert empty.status_code == 422 and "give the requester a reason" in empty.text
        done = post_form(client, f"/admin/requests/{sent.id}/reject", {"reason": "use shared"})
        assert done.status_code == 200 and "was rejected" in done.text
        assert "use shared" in done.text
        twice = post_form(client, f"/admin/requests/{sent.id}/approve", {})
        assert twice.status_code == 409 and "already rejected" in twice.text
        assert requests.get_request(server.app, asker, sent.id).reason == "use shared"
    finally:
        node_settings.set_requests_allowed(server.app, admin, False)


# In the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_request_flow_from_both_sides(server: RunningServer, browser: Any, newest: str) -> None:
    from playwright.sync_api import expect

    node_settings.set_requests_allowed(server.app, Actor.local_admin(), False)
    admin = browser.new_context(viewport={"width": 1280, "height": 860})
    user = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        # The administrator turns requests on in the settings page.
        desk = admin.new_page()
        log_in(desk, server.url, "admin", ADMIN_PASSWORD)
        desk.click("header >> text=Administration")
        desk.wait_for_url(server.url + "/admin/settings")
        expect(desk.locator("[data-allow-requests]")).to_have_text("off")
        desk.check("input[name=allow_requests]")
        desk.click("#requests-setting button[type=submit]")
        expect(desk.locator("p.notice")).to_contain_text("may now request code envs")
        expect(desk.locator("[data-allow-requests]")).to_have_text("on")
        shot(desk, "admin-settings")

        # A user without the create right sends a request through the existing form.
        page = user.new_page()
        log_in(page, server.url, "asker", PASSWORD)
        expect(page.locator("text=New Python env")).to_have_count(0)
        page.click("text=Request a code env")
        page.fill("input[name=name]", "asked-for")
        page.select_option("select[name=python]", newest)
        page.fill("textarea[name=message]", "For the monthly report")
        page.click("button:text('Send request')")
        expect(page.locator("p.notice")).to_contain_text("asked-for")

        # The administrator sees it pending first in the inbox and approves it.
        desk.click("nav.tabs >> text=Requests")
        row = desk.locator("#requests tr[data-request]").first
        expect(row).to_have_attribute("data-status", "pending")
        expect(row).to_contain_text("asked-for")
        expect(row).to_contain_text("asker")
        expect(row).to_contain_text("For the monthly report")
        shot(desk, "admin-requests")
        row.locator("button:text('Approve and build')").click()
        desk.wait_for_url(re.compile(r"/envs/asked-for/revisions\?build="))
        status = desk.locator("[data-build-status]")
        expect(status).to_have_text(re.compile("succeeded|failed"), timeout=BUILD_TIMEOUT_MS)
        expect(status).to_have_text("succeeded")

        # The env is built, and owned by the requester, who sees it in their list.
        shown = envs.show_env(server.app, Actor.local_admin(), "asked-for")
        assert shown.owner == "asker"
        page.goto(server.url + "/")
        mine = page.locator("#envs tr[data-row]", has_text="asked-for")
        expect(mine).to_contain_text("ready")
        expect(mine).to_contain_text("asker")
        desk.goto(server.url + "/admin/requests")
        expect(desk.locator("tr[data-request]", has_text="asked-for")).to_have_attribute(
            "data-status", "approved"
        )
        desk.click("nav.tabs >> text=Audit log")
        expect(desk.locator("#audit")).to_contain_text("request.approve")
        shot(desk, "admin-audit")
    finally:
        admin.close()
        user.close()
        node_settings.set_requests_allowed(server.app, Actor.local_admin(), False)
