"""Accounts in the console: changing one's own password, and the row actions of the Users and
groups tab (reset a password, disable, enable, delete a user; edit a group's rights, add and
remove members), driven in Chromium; refusals and forced posts over plain HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from codenv.domain.spec import EnvSpec
from codenv.services import accounts, envs
from codenv.services.actor import Actor
from support.access import PASSWORD, user_in
from support.browser import chromium, log_in, shot
from support.pkgindex import PackageIndex
from support.server import ADMIN_PASSWORD, RunningServer, console_login, post_form, running_server

pytestmark = pytest.mark.xdist_group("web-admin-accounts")
NEW_PASSWORD = "a brand new password"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-accounts") / "home"
    with running_server(home, sample_index.url) as running:
        admin = Actor.local_admin()
        user_in(running.app, admin, "walker")
        user_in(running.app, admin, "victim", group="helpers", may_create_envs=True)
        owner = user_in(running.app, admin, "keeper", group="makers", may_create_envs=True)
        envs.create_env(running.app, owner, "kept-env", EnvSpec(python=newest))
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _user(server: RunningServer, name: str) -> accounts.UserInfo | None:
    listed = accounts.list_users(server.app, Actor.local_admin())
    return next((u for u in listed if u.name == name), None)


# Plain HTTP ---------------------------------------------------------------------------------


def test_a_non_admin_cannot_force_the_row_actions(server: RunningServer) -> None:
    client = console_login(server, "walker", PASSWORD)
    for path, data in [
        ("/admin/users/victim/password", {"new_password": "stolen password"}),
        ("/admin/users/victim/disable", {}),
        ("/admin/users/victim/delete", {}),
        ("/admin/groups/helpers/rights", {"administrator": "on"}),
        ("/admin/groups/helpers/members/victim/remove", {}),
    ]:
        response = post_form(client, path, data)
        assert response.status_code == 403, (path, response.text)
    victim = _user(server, "victim")
    assert victim and victim.active and "helpers" in victim.groups and not victim.is_admin


def test_own_password_needs_the_current_one_and_matching_repeats(server: RunningServer) -> None:
    client = console_login(server, "walker", PASSWORD)
    page = client.get("/account")
    assert page.status_code == 200 and "Change your password" in page.text
    wrong = post_form(
        client,
        "/account/password",
        {
            "current_password": "not it at all",
            "new_password": NEW_PASSWORD,
            "repeat_password": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 403 and "the current password is wrong" in wrong.text
    differ = post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat_password": "x"},
    )
    assert differ.status_code == 422 and "the two new passwords differ" in differ.text
    short = post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "short", "repeat_password": "short"},
    )
    assert short.status_code == 422 and "8 to 1024 characters" in short.text
    assert console_login(server, "walker", PASSWORD).get("/").status_code == 200


# In the browser -----------------------------------------------------------------------------


def test_changing_your_password_ends_your_other_sessions(
    server: RunningServer, browser: Any
) -> None:
    from playwright.sync_api import expect

    elsewhere = console_login(server, "victim", PASSWORD)
    assert elsewhere.get("/").status_code == 200
    context = browser.new_context(viewport={"width": 1280, "height": 760})
    try:
        page = context.new_page()
        log_in(page, server.url, "victim", PASSWORD)
        page.click("header a.who")
        page.wait_for_url(server.url + "/account")
        page.fill("input[name=current_password]", PASSWORD)
        page.fill("input[name=new_password]", NEW_PASSWORD)
        page.fill("input[name=repeat_password]", NEW_PASSWORD)
        page.click("#change-password button[type=submit]")
        expect(page.locator("p.notice")).to_contain_text("your other browser sessions were ended")
        shot(page, "account")
        # This browser goes on; the other session is sent to the login page.
        page.goto(server.url + "/")
        assert page.url == server.url + "/"
        assert elsewhere.get("/").status_code == 303
        assert console_login(server, "victim", NEW_PASSWORD).get("/").status_code == 200
    finally:
        context.close()


def test_administrators_act_on_users_from_their_rows(server: RunningServer, browser: Any) -> None:
    from playwright.sync_api import expect

    victim_session = console_login(server, "walker", PASSWORD)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        log_in(page, server.url, "admin", ADMIN_PASSWORD)
        page.goto(server.url + "/admin/users")
        row = page.locator("#users tr[data-user=walker]")

        row.locator("summary", has_text="Reset password").click()
        row.locator("input[name=new_password]").fill(NEW_PASSWORD)
        row.locator("form[data-action=reset-password] button").click()
        expect(page.locator("p.notice")).to_contain_text("The password of walker was reset")
        assert victim_session.get("/").status_code == 303

        row.locator("form[data-action=disable] button").click()
        expect(page.locator("p.notice")).to_contain_text("walker is disabled")
        expect(row).to_contain_text("disabled")
        walker = _user(server, "walker")
        assert walker and not walker.active
        row.locator("form[data-action=enable] button").click()
        expect(page.locator("p.notice")).to_contain_text("walker is enabled again")
        assert console_login(server, "walker", NEW_PASSWORD).get("/").status_code == 200

        # A user who owns code envs cannot be deleted; the reason says what to do.
        page.locator("#users tr[data-user=keeper] form[data-action=delete] button").click()
        alert = page.locator("p.error[role=alert]")
        expect(alert).to_contain_text("owns code envs (kept-env): give them another owner first")
        assert _user(server, "keeper") is not None
        shot(page, "admin-users")

        page.locator("#users tr[data-user=walker] form[data-action=delete] button").click()
        expect(page.locator("p.notice")).to_contain_text("User walker was deleted")
        expect(page.locator("#users tr[data-user=walker]")).to_have_count(0)
        assert _user(server, "walker") is None
    finally:
        context.close()


def test_administrators_edit_groups_from_their_rows(server: RunningServer, browser: Any) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        log_in(page, server.url, "admin", ADMIN_PASSWORD)
        page.goto(server.url + "/admin/users")
        row = page.locator("#groups tr[data-group=makers]")
        row.locator("input[name=may_create_envs]").uncheck()
        row.locator("input[name=may_manage_all_envs]").check()
        row.locator("form[data-action=rights] button").click()
        expect(page.locator("p.notice")).to_contain_text("The rights of group makers were saved")
        makers = next(
            g for g in accounts.list_groups(server.app, Actor.local_admin()) if g.name == "makers"
        )
        assert makers.may_manage_all_envs and not makers.may_create_envs

        row.locator("select[name=user]").select_option("victim")
        row.locator("form[data-action=add-member] button").click()
        expect(page.locator("p.notice")).to_contain_text("victim is now a member of makers")
        row.locator("li[data-member=victim] button").click()
        expect(page.locator("p.notice")).to_contain_text("victim is no longer a member of makers")
        expect(row.locator("li[data-member=victim]")).to_have_count(0)
        expect(row.locator("li[data-member=keeper]")).to_have_count(1)
        victim = _user(server, "victim")
        assert victim and "makers" not in victim.groups

        # The last administrator cannot be taken away: refused, and said above the table.
        admins = page.locator("#groups tr[data-group=administrators]")
        admins.locator("input[name=administrator]").uncheck()
        admins.locator("form[data-action=rights] button").click()
        expect(page.locator("p.error[role=alert]")).to_contain_text("no active administrator")
    finally:
        context.close()


def test_tokens_get_an_expiry(server: RunningServer) -> None:
    client = console_login(server, "keeper", PASSWORD)
    created = post_form(client, "/admin/tokens", {"name": "ci", "expires_days": "30"})
    assert created.status_code == 200
    row = re.search(r"<tr data-row data-token=.*?</tr>", created.text, re.S)
    assert row and "never" not in row.group(0)
    bad = post_form(client, "/admin/tokens", {"name": "ci", "expires_days": "soon"})
    assert bad.status_code == 422 and "number of days" in bad.text
