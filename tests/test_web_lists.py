"""The console's long lists, paged and filtered by the server: the code envs (owner, status,
Python, name prefix), the audit log, an env's builds and the requests; in Chromium for the envs
and a requester's requests, over HTTP for the rest. 30 envs shown 10 a page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import support.server
from codenv.backends.base import Run
from codenv.backends.fake import FakeInstaller
from codenv.domain.errors import BuildFailed
from codenv.domain.spec import EnvSpec
from codenv.services import builds, envs, node_settings, permissions, requests
from codenv.services.accounts import ensure_initial_admin
from codenv.services.actor import Actor
from codenv.services.app import open_codenv
from codenv.settings import load_settings
from support.access import PASSWORD, user_in
from support.browser import chromium, log_in
from support.server import ADMIN_PASSWORD, RunningServer, console_login, running_server

pytestmark = pytest.mark.xdist_group("web-lists")
UNUSED_INDEX = "http://127.0.0.1:9/simple"
OWNERS = ("ana", "bo", "cy")
FAILING = {"ml-07", "ml-14"}  # their first build fails: "failed"


class Breakable(FakeInstaller):
    """The fake installer, failing every build while `failing` (builds run inline here)."""

    failing = False

    def create_venv(self, run: Run, plan: Any, target: Path) -> None:
        # Not at resolve: a plan resolved before comes from the resolutions cache.
        if self.failing:
            raise BuildFailed("no venv (on purpose)")
        super().create_venv(run, plan, target)


def _populate(home: Path, oldest: str, newest: str) -> None:
    """30 envs, built inline before the server starts: ml-00..ml-29, owned in turn by ana, bo
    and cy, every third on the oldest Python, two failed; and 3 builds of ml-00."""
    fake = Breakable()
    settings = load_settings(home, {"CODENV_INDEX_URL": UNUSED_INDEX})
    app = open_codenv(settings, "inline", installer=fake, editables=fake)
    admin = Actor.local_admin()
    try:
        ensure_initial_admin(app, ADMIN_PASSWORD)  # before any other user
        actors = [
            user_in(app, admin, owner, group=f"g-{owner}", may_create_envs=True) for owner in OWNERS
        ]
        for number in range(30):
            python = oldest if number % 3 == 0 else newest
            fake.failing = f"ml-{number:02d}" in FAILING
            envs.create_env(app, actors[number % 3], f"ml-{number:02d}", EnvSpec(python))
        fake.failing = False
        for _ in range(3):
            builds.request_update(app, admin, "ml-00", rebuild=True)
    finally:
        app.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, oldest: str, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-lists") / "home"
    _populate(home, oldest, newest)
    fake = FakeInstaller()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            support.server, "open_codenv", partial(open_codenv, installer=fake, editables=fake)
        )
        with running_server(home, UNUSED_INDEX) as running:
            yield running


def _names(page: Any) -> list[str]:
    return [
        text.strip() for text in page.locator("#envs tr[data-row] td:first-child").all_inner_texts()
    ]


def test_env_list_pages_and_filters_in_the_browser(server: RunningServer, oldest: str) -> None:
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, server.url, "admin", ADMIN_PASSWORD)
        page.goto(server.url + "/?limit=10")
        assert _names(page) == [f"ml-{n:02d}" for n in range(10)]
        # Next page, twice: the next ten by name, then the last ten and no further link.
        page.click("a[data-next-page]")
        assert _names(page) == [f"ml-{n:02d}" for n in range(10, 20)]
        page.click("a[data-next-page]")
        assert _names(page) == [f"ml-{n:02d}" for n in range(20, 30)]
        assert page.locator("a[data-next-page]").count() == 0
        page.click("a[data-first-page]")
        assert _names(page)[0] == "ml-00"

        # Owner and status: bo's envs that are ready (ml-07 failed), paged by 10 still.
        page.fill("input[name=owner]", "bo")
        page.select_option("select[name=status]", "ready")
        page.click("[data-env-filters] button[type=submit]")
        expected = [f"ml-{n:02d}" for n in range(1, 30, 3) if f"ml-{n:02d}" not in FAILING]
        assert _names(page) == expected[:10] and "owner=bo" in page.url
        assert page.locator("a[data-next-page]").count() == 0

        page.click("a[data-clear-filters]")
        page.select_option("select[name=status]", "failed")
        page.click("[data-env-filters] button[type=submit]")
        assert _names(page) == sorted(FAILING)
        expect_status = page.locator("#envs tr[data-row] .status").all_inner_texts()
        assert expect_status == ["failed", "failed"]

        # Python and name prefix (typed in the bar's box, Enter): ml-2x on the oldest Python.
        page.click("a[data-clear-filters]")
        page.fill("input[name=python]", oldest)
        page.fill("input[name=prefix]", "ML-2")
        page.press("input[name=prefix]", "Enter")
        page.wait_for_url(re.compile(r"prefix=ML-2"))
        assert _names(page) == ["ml-21", "ml-24", "ml-27"]
        page.fill("input[name=prefix]", "nothing-like-this")
        page.press("input[name=prefix]", "Enter")
        page.wait_for_url(re.compile(r"prefix=nothing"))
        assert page.locator("[data-empty]").is_visible()
        page.close()


def test_a_user_pages_through_their_envs_only(server: RunningServer) -> None:
    client = console_login(server, "cy", PASSWORD)
    first = client.get("/", params={"limit": 5})
    names = re.findall(r'<a href="/envs/(ml-\d+)">', first.text)
    assert names == ["ml-02", "ml-05", "ml-08", "ml-11", "ml-14"]
    more = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert more is not None
    second = client.get(more.group(1).replace("&amp;", "&"))
    assert re.findall(r'<a href="/envs/(ml-\d+)">', second.text) == [
        "ml-17",
        "ml-20",
        "ml-23",
        "ml-26",
        "ml-29",
    ]
    assert 'rel="next"' not in second.text
    refused = client.get("/", params={"status": "sleeping"})
    assert refused.status_code == 422 and "unknown status" in refused.text
    forged = client.get("/", params={"after": "not-a-cursor"})
    assert forged.status_code == 422 and 'data-field="cursor"' in forged.text


def test_import_is_offered_to_who_may_update_an_env_shown(server: RunningServer) -> None:
    admin = Actor.local_admin()
    user_in(server.app, admin, "dee", group="g-dee")  # may not create envs
    client = console_login(server, "dee", PASSWORD)
    assert "Import a bundle" not in client.get("/").text
    permissions.set_permissions(server.app, admin, "ml-00", grants=[("g-dee", "use")])
    page = client.get("/").text  # the same page, after a change: read again
    assert re.findall(r'<a href="/envs/(ml-\d+)">', page) == ["ml-00"]
    assert "Import a bundle" not in page
    permissions.set_permissions(server.app, admin, "ml-00", grants=[("g-dee", "update")])
    assert "Import a bundle" in client.get("/").text


def test_audit_log_pages_and_filters(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    first = client.get("/admin/audit", params={"action": "env.create", "limit": 20})
    assert first.status_code == 200
    targets = re.findall(r"<td>(ml-\d+)</td>", first.text)
    assert len(targets) == 20 and targets[0] == "ml-29"  # newest first
    more = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert more is not None and "action=env.create" in more.group(1)
    second = client.get(more.group(1).replace("&amp;", "&"))
    assert re.findall(r"<td>(ml-\d+)</td>", second.text) == [
        f"ml-{n:02d}" for n in range(9, -1, -1)
    ]
    assert 'rel="next"' not in second.text and "data-first-page" in second.text
    by_actor = client.get("/admin/audit", params={"action": "env.create", "actor": "bo"})
    assert set(re.findall(r"<td>(ml-\d+)</td>", by_actor.text)) == {
        f"ml-{n:02d}" for n in range(1, 30, 3)
    }


def test_an_envs_builds_page_and_keep_the_shown_log(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    first = client.get("/envs/ml-00/revisions", params={"limit": 2})
    ids = re.findall(r'revisions\?build=([0-9a-f]+)"><code>', first.text)
    assert len(ids) == 2
    more = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert more is not None
    second = client.get(more.group(1).replace("&amp;", "&"))
    older = re.findall(r'revisions\?build=([0-9a-f]+)"><code>', second.text)
    assert len(older) == 2 and not set(older) & set(ids)
    # The log shown is still the build that was shown, though not on this page.
    assert f'data-build="{ids[0]}"' in second.text
    assert 'rel="next"' not in second.text  # 4 builds: the first and 3 updates


def _request_names(page: Any) -> list[str]:
    cells = page.locator("#my-requests tr[data-row] td:first-child").all_inner_texts()
    return [text.strip() for text in cells]


def test_requests_page_and_filter_by_status_for_their_requester_and_the_inbox(
    server: RunningServer, newest: str
) -> None:
    app, admin = server.app, Actor.local_admin()
    node_settings.set_requests_allowed(app, admin, True)
    eve = user_in(app, admin, "eve")
    sent = [requests.submit_request(app, eve, f"asked-{n:02d}", EnvSpec(newest)) for n in range(8)]
    for shown in sent[:3]:
        requests.reject_request(app, admin, shown.id, "not now")
    with chromium() as browser:  # the requester: pending first (newest first), then decided
        page = browser.new_page()
        log_in(page, server.url, "eve", PASSWORD)
        page.goto(server.url + "/requests/mine?limit=3")
        assert _request_names(page) == ["asked-07", "asked-06", "asked-05"]
        page.click("a[data-next-page]")
        assert _request_names(page) == ["asked-04", "asked-03", "asked-02"]
        page.click("a[data-next-page]")
        assert _request_names(page) == ["asked-01", "asked-00"]
        assert page.locator("a[data-next-page]").count() == 0
        page.select_option("select[name=status]", "rejected")
        page.click("[data-request-filters] button[type=submit]")
        assert _request_names(page) == ["asked-02", "asked-01", "asked-00"]
        assert "limit=3" in page.url and page.locator("a[data-next-page]").count() == 0
        page.close()
    inbox = console_login(server, "admin", ADMIN_PASSWORD)
    pending = inbox.get("/admin/requests", params={"status": "pending", "limit": 4})
    assert re.findall(r'data-request="\d+" data-status="(\w+)"', pending.text) == ["pending"] * 4
    assert "5 pending" in pending.text and 'rel="next"' in pending.text
    refused = console_login(server, "eve", PASSWORD).get("/admin/requests")
    assert refused.status_code == 403 and "data-request=" not in refused.text
    unknown = inbox.get("/requests/mine", params={"status": "sleeping"})
    assert unknown.status_code == 422 and "unknown status" in unknown.text
