"""The General tab edits the spec's options (description, Python, core packages, Jupyter, the
env's own install options); `installed?revision=N` shows an older revision; the Packages tab
shows what a package set adds before it is added. Driven in Chromium; refusals over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from codenv.domain.spec import EnvSpec
from codenv.services import envs
from codenv.services.actor import Actor
from support.access import PASSWORD, user_in
from support.browser import chromium, log_in, shot
from support.pkgindex import PackageIndex
from support.server import (
    ADMIN_PASSWORD,
    RunningServer,
    console_login,
    post_form,
    running_server,
    wait_for_build,
)

pytestmark = pytest.mark.xdist_group("web-general")
BUILD_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-general") / "home"
    with running_server(home, sample_index.url) as running:
        admin = Actor.local_admin()
        user_in(running.app, admin, "onlooker")
        created = envs.create_env(running.app, admin, "general-demo", EnvSpec(python=newest))
        built = wait_for_build(running.client(running.admin_token()), created.build_id)
        assert built["status"] == "succeeded"
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_general_options_need_the_update_right(server: RunningServer, newest: str) -> None:
    from codenv.services import permissions

    permissions.set_permissions(server.app, Actor.local_admin(), "general-demo", usable_by_all=True)
    client = console_login(server, "onlooker", PASSWORD)
    page = client.get("/envs/general-demo")
    assert page.status_code == 200 and 'id="general-form"' not in page.text
    forced = post_form(
        client, "/envs/general-demo/general", {"python": newest, "description": "mine now"}
    )
    assert forced.status_code == 403
    spec = envs.show_env(server.app, Actor.local_admin(), "general-demo").spec
    assert spec["description"] == ""
    bad = post_form(
        console_login(server, "admin", ADMIN_PASSWORD),
        "/envs/general-demo/general",
        {"python": newest, "install_options": "--index-url 'unclosed"},
    )
    assert bad.status_code == 422 and "cannot be read" in bad.text


def test_general_tab_edits_and_older_revisions_show(
    server: RunningServer, browser: Any, newest: str
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        log_in(page, server.url, "admin", ADMIN_PASSWORD)
        page.goto(server.url + "/envs/general-demo")
        page.fill("textarea[name=description]", "Monthly reports")
        page.uncheck("input[name=inherit_options]")
        page.fill("input[name=install_options]", "--pre")
        page.click("#general-form button[value=save]")
        expect(page.locator("p.notice")).to_contain_text("Saved. Update the env")
        facts = page.locator("dl.facts")
        expect(facts).to_contain_text("Monthly reports")
        expect(facts).to_contain_text("--pre")
        expect(facts).to_contain_text("the saved spec differs")
        saved = envs.show_env(server.app, Actor.local_admin(), "general-demo").spec
        assert saved["install_options"] == ["--pre"] and saved["python"] == newest
        shot(page, "env-general-edit")

        # Without the core packages the env changes: the update builds a new revision.
        page.check("input[name=inherit_options]")
        page.uncheck("input[name=core]")
        page.click("#general-form button[value=update]")
        page.wait_for_url(re.compile(r"/envs/general-demo/revisions\?build="))
        status = page.locator("[data-build-status]")
        expect(status).to_have_text(re.compile("succeeded|failed"), timeout=BUILD_TIMEOUT_MS)
        expect(status).to_have_text("succeeded")
        assert (
            envs.show_env(server.app, Actor.local_admin(), "general-demo").spec["install_options"]
            is None
        )

        page.goto(server.url + "/envs/general-demo/revisions")
        page.locator("tr[data-revision='1'] a[data-installed-link]").click()
        page.wait_for_url(server.url + "/envs/general-demo/installed?revision=1")
        heading = page.locator("h2", has_text="Revision 1")
        expect(heading).to_contain_text("not the active one")

        page.goto(server.url + "/envs/general-demo/packages")
        contents = page.locator("#set-contents details[data-set='visual-ml:cpu']")
        contents.locator("summary").click()
        expect(contents).to_contain_text("scikit-learn")
    finally:
        context.close()
