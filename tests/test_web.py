"""The web console in a real browser: Debian's headless Chromium driven by Playwright.

One server for the module. The whole flow (log in → New Python env → Save and update with a
requested package → the live log finishes → actually installed packages → edit → Save and
update → roll back), then a user without rights. Screenshots of each main page go to
docs/screenshots/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from codenv.domain.spec import EnvSpec
from codenv.services import builds, envs, permissions
from codenv.services.actor import Actor
from support.access import PASSWORD, user_in
from support.browser import chromium, log_in, shot
from support.pkgindex import PackageIndex
from support.samples import SAMPLE_SET, write_node_sets
from support.server import ADMIN_PASSWORD, RunningServer, running_server

pytestmark = pytest.mark.xdist_group("web-browser")
BUILD_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web") / "home"
    # A set of the node's own (alpha, from the index on loopback) and one no Python here has.
    old_only = {
        **SAMPLE_SET,
        "id": "old-only",
        "title": "Old only",
        "python": {"min": "3.6", "max": "3.6"},
        "variants": {"cpu": ["alpha"]},
    }
    write_node_sets(home, [{**SAMPLE_SET, "variants": {"cpu": ["alpha>=1.0"]}}, old_only])
    with running_server(home, sample_index.url) as running:
        user_in(running.app, Actor.local_admin(), "reader")
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def wait_for_build(page: Any) -> None:
    """The revisions page follows the log live, then reloads when the build has finished."""
    from playwright.sync_api import expect

    status = page.locator("[data-build-status]")
    expect(status).to_have_text(re.compile("succeeded|failed"), timeout=BUILD_TIMEOUT_MS)
    expect(status).to_have_text("succeeded")
    expect(page.locator("#log")).to_contain_text("revision")


def test_whole_flow_in_the_browser(server: RunningServer, browser: Any, newest: str) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(server.url + "/login")
    shot(page, "login")
    log_in(page, server.url, "admin", ADMIN_PASSWORD)

    # New Python env: the identifier is checked as it is typed.
    page.click("text=New Python env")
    name = page.locator("input[name=name]")
    name.fill("bad name")
    expect(page.locator("#name-message")).to_contain_text("invalid code env name")
    name.fill("web-demo")
    expect(page.locator("#name-message")).to_have_text("web-demo is available")
    page.select_option("select[name=python]", newest)
    shot(page, "new-env")
    page.click("button:text('Create')")
    page.wait_for_url(re.compile(r"/envs/web-demo/revisions\?build="))
    wait_for_build(page)

    # Packages to install: an error names its line, then Save and update with `beta`.
    page.click("nav.tabs >> text=Packages to install")
    # Sets are offered with their Python range; incompatible ones are disabled with the reason.
    sets = page.locator("select[name=add_set]")
    expect(sets).to_contain_text(re.compile(r"Python 3\.\d+–3"))
    expect(sets.locator("option[value='old-only']")).to_be_disabled()
    expect(sets.locator("option[value='old-only']")).to_contain_text("needs Python 3.6–3.6")
    sets.select_option("sample")
    page.fill("textarea[name=requested]", "beta\n-i http://elsewhere/simple\n")
    page.click("button[value=save]")
    expect(page.locator("p.error[data-field=requested]")).to_contain_text("line 2")
    page.fill("textarea[name=requested]", "beta\n")
    shot(page, "env-packages")
    page.click("button[value=update]")
    page.wait_for_url(re.compile(r"/revisions\?build="))
    expect(page.locator("[data-progress], [data-build-status]").first).to_be_visible()
    wait_for_build(page)

    # Actually installed packages: beta and the alpha it requires, searchable.
    page.click("nav.tabs >> text=Actually installed packages")
    table = page.locator("#installed")
    expect(table).to_contain_text("beta")
    expect(table).to_contain_text("alpha")
    page.fill("input[data-filter]", "bet")
    expect(table.locator("tr[data-row]:visible")).to_have_count(1)
    page.fill("input[data-filter]", "")
    # What changed since revision 1, as the service computes it (the API shows the same).
    expect(page.locator("h2", has_text="Changes since revision 1")).to_be_visible()
    added = page.locator("table.changes tr[data-change='added']")
    expect(added.filter(has_text="beta")).to_have_count(1)
    shot(page, "env-installed")

    # Edit the requested packages, Save and update again.
    page.click("nav.tabs >> text=Packages to install")
    page.fill("textarea[name=requested]", "beta\ngamma\n")
    page.click("button[value=update]")
    page.wait_for_url(re.compile(r"/revisions\?build="))
    wait_for_build(page)
    expect(page.locator("tr[data-revision='3']")).to_contain_text("active")
    shot(page, "env-revisions")

    # Roll back to revision 2: gamma is gone again.
    page.click("button:text('Roll back to 2')")
    page.wait_for_url(re.compile(r"/envs/web-demo/revisions$"))
    expect(page.locator("tr[data-revision='2']")).to_contain_text("active")
    page.click("nav.tabs >> text=Actually installed packages")
    expect(page.locator("#installed")).not_to_contain_text("gamma")

    page.click("nav.tabs >> text=General")
    expect(page.locator("dl.facts")).to_contain_text(str(server.app.settings.envs_dir))
    expect(page.locator("text=Delete this code env")).to_be_visible()
    shot(page, "env-general")

    page.goto(server.url + "/")
    row = page.locator("#envs tr[data-row]", has_text="web-demo")
    # Rolled back: the saved spec (with gamma) is kept, and differs from the active revision.
    expect(row).to_contain_text("out of date")
    shot(page, "envs")
    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    shot(page, "envs-narrow")
    context.close()


def finish(server: RunningServer, build_id: str) -> None:
    deadline = time.monotonic() + 120
    while not builds.get_build(server.app, Actor.local_admin(), build_id).finished:
        assert time.monotonic() < deadline, f"build {build_id} did not finish"
        time.sleep(0.1)


def test_user_without_rights_sees_no_edit_controls(
    server: RunningServer, browser: Any, newest: str
) -> None:
    from playwright.sync_api import expect

    admin = Actor.local_admin()
    # Two revisions, so that a rollback would be offered to someone allowed to update.
    created = envs.create_env(server.app, admin, "web-shared", EnvSpec(python=newest))
    finish(server, created.build_id)
    again = builds.request_update(server.app, admin, "web-shared", rebuild=True)
    assert again.build_id is not None
    finish(server, again.build_id)
    permissions.set_permissions(server.app, admin, "web-shared", usable_by_all=True)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    log_in(page, server.url, "reader", PASSWORD)
    expect(page.locator("text=Request a code env")).to_be_visible()
    expect(page.locator("text=New Python env")).to_have_count(0)
    page.goto(server.url + "/envs/web-shared/packages")
    expect(page.locator("textarea[name=requested]")).to_have_attribute("readonly", "")
    expect(page.locator("button[value=update]")).to_have_count(0)
    shot(page, "env-packages-read-only")
    page.goto(server.url + "/envs/web-shared/revisions")
    expect(page.locator("text=Roll back")).to_have_count(0)
    page.goto(server.url + "/envs/web-shared")
    expect(page.locator("text=Delete this code env")).to_have_count(0)

    # A forced form post (with a valid session and CSRF token) is refused by the services.
    page.goto(server.url + "/envs/web-shared/packages")
    page.evaluate(
        """() => {
            const form = document.querySelector("form[action$='/packages']");
            const extra = document.createElement("input");
            extra.type = "hidden"; extra.name = "action"; extra.value = "update";
            form.appendChild(extra);
            form.querySelector("textarea").readOnly = false;
            form.querySelector("textarea").value = "gamma";
            form.submit();
        }"""
    )
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator("p.error")).to_contain_text("you may not change code env 'web-shared'")
    shot(page, "forbidden")
    context.close()
