"""Code env requests in the console, driven in Chromium: the request form (newest supported
Python by default, the name checked as you type, package sets showing their contents,
requested packages), the administrators' badge and their edit before deciding, and the
requester's "My requests"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from codenv.services import node_settings, requests
from codenv.services.actor import Actor
from support.access import PASSWORD, user_in
from support.browser import chromium, log_in, shot
from support.pkgindex import PackageIndex
from support.server import ADMIN_PASSWORD, RunningServer, console_login, post_form, running_server

pytestmark = pytest.mark.xdist_group("web-requests")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-requests") / "home"
    with running_server(home, sample_index.url) as running:
        admin = Actor.local_admin()
        user_in(running.app, admin, "asker")
        node_settings.set_requests_allowed(running.app, admin, True)
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_only_administrators_edit_a_request(server: RunningServer, newest: str) -> None:
    asker = console_login(server, "asker", PASSWORD)
    sent = post_form(asker, "/requests/new", {"name": "forced", "python": newest})
    assert sent.status_code == 200 and "was sent to the administrators" in sent.text
    mine = asker.get("/requests/mine")
    assert "forced" in mine.text and "waiting for an administrator" in mine.text
    listed = requests.list_requests(server.app, Actor.local_admin(), status="pending")
    forced = next(r for r in listed if r.name == "forced")
    assert asker.get(f"/admin/requests/{forced.id}/edit").status_code == 403
    edit = post_form(asker, f"/admin/requests/{forced.id}/edit", {"python": newest})
    assert edit.status_code == 403
    admin = console_login(server, "admin", ADMIN_PASSWORD)
    bad = post_form(admin, f"/admin/requests/{forced.id}/edit", {"python": "2.7"})
    assert bad.status_code == 422 and 'data-field="python"' in bad.text
    requests.reject_request(server.app, Actor.local_admin(), forced.id, "test over")


def test_request_edit_and_my_requests_in_the_browser(
    server: RunningServer, browser: Any, newest: str
) -> None:
    from playwright.sync_api import expect

    asking = browser.new_context(viewport={"width": 1280, "height": 900})
    deciding = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = asking.new_page()
        log_in(page, server.url, "asker", PASSWORD)
        page.click("text=Request a code env")
        expect(page.locator("select[name=python]")).to_have_value(newest)
        page.fill("input[name=name]", "no spaces")
        expect(page.locator("#name-message")).to_contain_text("invalid code env name")
        page.fill("input[name=name]", "reports")
        expect(page.locator("#name-message")).to_contain_text("reports is available")
        chosen = page.locator(".set-choice[data-set='visual-ml:cpu']")
        chosen.locator("summary").click()
        expect(chosen.locator("ul.sets")).to_contain_text("numpy")
        chosen.locator("input[type=checkbox]").check()
        page.fill("textarea[name=requested]", "alpha\n")
        page.fill("textarea[name=message]", "For the monthly report")
        shot(page, "request-form")
        page.click("button:text('Send request')")
        expect(page.locator("p.notice")).to_contain_text("reports")

        desk = deciding.new_page()
        log_in(desk, server.url, "admin", ADMIN_PASSWORD)
        badge = desk.locator("header [data-pending-requests]")
        expect(badge).to_have_text("1 pending request")
        badge.click()
        row = desk.locator("#requests tr[data-request]", has_text="reports")
        expect(row).to_contain_text("visual-ml:cpu")
        row.locator("a[data-edit]").click()
        desk.fill("textarea[name=requested]", "alpha\nbeta\n")
        desk.locator(".set-choice[data-set='visual-ml:cpu'] input[type=checkbox]").uncheck()
        shot(desk, "admin-request-edit")
        desk.click("#edit-request button[type=submit]")
        expect(desk.locator("p.notice")).to_contain_text("was saved")
        expect(row).to_contain_text("beta")
        expect(row).not_to_contain_text("visual-ml")
        row.locator("input[name=reason]").fill("use the shared env")
        row.locator("button:text('Reject')").click()
        expect(desk.locator("header [data-pending-requests]")).to_have_count(0)

        page.goto(server.url + "/")
        page.click("text=My requests")
        mine = page.locator("#my-requests tr[data-request]", has_text="reports")
        expect(mine).to_have_attribute("data-status", "rejected")
        expect(mine).to_contain_text("use the shared env")
        shot(page, "my-requests")
    finally:
        asking.close()
        deciding.close()
