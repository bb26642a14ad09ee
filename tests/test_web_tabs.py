"""The env page's Resources and Permissions tabs: in a real browser, then over plain HTTP.

Browser (Debian's headless Chromium, driven by Playwright; same skip rule as test_web.py):
edit and save an init script that sets an env var, run it and follow its log, see the var,
upload a file, see it listed, download it, delete it, and grant a group `use`. Screenshots go
to docs/screenshots/. Over HTTP: a user with only `use` sees no edit controls and every forced
form post is refused (403); paths outside the resources directory are refused in place.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from codenv.domain.spec import EnvSpec
from codenv.services import builds, envs, permissions, resources
from codenv.services.actor import Actor
from support.access import PASSWORD, user_in
from support.browser import chromium, shot
from support.pkgindex import PackageIndex
from support.server import (
    ADMIN_PASSWORD,
    RunningServer,
    console_login,
    post_form,
    running_server,
    session_csrf,
)

pytestmark = pytest.mark.xdist_group("web-tabs")
BUILD_TIMEOUT_MS = 120_000
SCRIPT = (
    "from codenv_runtime import resources\n"
    "resources.set_env_var('GREETING', 'hello-from-init')\n"
    "print('init script ran')\n"
)


def finish(server: RunningServer, build_id: str) -> None:
    deadline = time.monotonic() + 120
    while not builds.get_build(server.app, Actor.local_admin(), build_id).finished:
        assert time.monotonic() < deadline, f"build {build_id} did not finish"
        time.sleep(0.1)
    assert builds.get_build(server.app, Actor.local_admin(), build_id).status == "succeeded"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-tabs") / "home"
    with running_server(home, sample_index.url) as running:
        admin = Actor.local_admin()
        user_in(running.app, admin, "reader")
        user_in(running.app, admin, "analyst", group="analysts")
        for name in ("tabs-demo", "tabs-shared"):
            created = envs.create_env(running.app, admin, name, EnvSpec(python=newest))
            finish(running, created.build_id)
        permissions.set_permissions(running.app, admin, "tabs-shared", usable_by_all=True)
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def test_resources_and_permissions_in_the_browser(
    server: RunningServer, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(server.url + "/login")
    page.fill("input[name=name]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")

    # The init script: edit, save with its options, then run it now and follow the log.
    page.goto(server.url + "/envs/tabs-demo")
    page.click("nav.tabs >> text=Resources")
    page.fill("textarea[name=script]", SCRIPT)
    page.check("input[name=run_on_update]")
    page.uncheck("input[name=run_on_api_node]")
    page.click("button:text('Save the init script')")
    expect(page.locator("p.notice")).to_contain_text("Init script saved")
    expect(page.locator("input[name=run_on_update]")).to_be_checked()
    expect(page.locator("input[name=run_on_api_node]")).not_to_be_checked()
    saved = resources.get_init_script(server.app, Actor.local_admin(), "tabs-demo")
    assert saved.script == SCRIPT and saved.run_on_update and not saved.run_on_api_node
    page.click("button:text('Run the init script now')")
    page.wait_for_url(re.compile(r"/envs/tabs-demo/revisions\?build="))
    status = page.locator("[data-build-status]")
    expect(status).to_have_text(re.compile("succeeded|failed"), timeout=BUILD_TIMEOUT_MS)
    expect(status).to_have_text("succeeded")
    expect(page.locator("#log")).to_contain_text("init script ran")

    # The env var it set shows in the table.
    page.click("nav.tabs >> text=Resources")
    expect(page.locator("#env-vars")).to_contain_text("GREETING")
    expect(page.locator("#env-vars")).to_contain_text("hello-from-init")

    # Upload a file, see it listed, download it.
    page.set_input_files(
        "input[name=file]",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"some notes\n"}],
    )
    page.click("form.upload button[type=submit]")
    expect(page.locator("p.notice")).to_contain_text("Uploaded")
    row = page.locator("#files tr[data-path='notes.txt']")
    expect(row).to_contain_text("notes.txt")
    shot(page, "env-resources")
    with page.expect_download() as downloading:
        row.locator("text=Download").click()
    download = downloading.value
    assert download.suggested_filename == "notes.txt"
    target = tmp_path / "notes.txt"
    download.save_as(str(target))
    assert target.read_bytes() == b"some notes\n"

    # Delete it (the confirmation is accepted).
    row.locator("button:text('Delete')").click()
    expect(page.locator("p.notice")).to_contain_text("Deleted")
    expect(page.locator("#files tr[data-path='notes.txt']")).to_have_count(0)

    # Permissions: grant the group `analysts` the level `use`.
    page.click("nav.tabs >> text=Permissions")
    owner = permissions.get_permissions(server.app, Actor.local_admin(), "tabs-demo").owner
    expect(page.locator("input[name=owner]")).to_have_value(owner)
    page.select_option("select[aria-label='Group to add']", "analysts")
    page.select_option("select[aria-label='Level of the added group']", "use")
    page.click("button:text('Save permissions')")
    expect(page.locator("p.notice")).to_contain_text("Permissions saved")
    expect(page.locator("#grants tr[data-group='analysts'] select")).to_have_value("use")
    shot(page, "env-permissions")
    granted = permissions.get_permissions(server.app, Actor.local_admin(), "tabs-demo")
    assert [(g.group, g.level) for g in granted.grants] == [("analysts", "use")]
    context.close()


def upload(client: httpx.Client, env: str, name: str, body: bytes, **fields: str) -> httpx.Response:
    return client.post(
        f"/envs/{env}/resources/upload",
        data={"csrf": session_csrf(client), **fields},
        files={"file": (name, body, "application/octet-stream")},
    )


def test_a_user_with_use_only_sees_no_edit_controls_and_is_refused(
    server: RunningServer,
) -> None:
    admin = Actor.local_admin()
    resources.set_init_script(server.app, admin, "tabs-shared", script="print('hi')\n")
    admin_client = console_login(server, "admin", ADMIN_PASSWORD)
    assert upload(admin_client, "tabs-shared", "kept.txt", b"kept").status_code == 303

    client = console_login(server, "reader", PASSWORD)
    page = client.get("/envs/tabs-shared/resources")
    assert page.status_code == 200
    assert "print(&#39;hi&#39;)" not in page.text and "kept.txt" in page.text  # may hold secrets
    assert "Download" in page.text
    for control in ("Save the init script", "Run the init script now", "Upload", "Delete"):
        assert control not in page.text, control
    shown = client.get("/envs/tabs-shared/permissions")
    assert shown.status_code == 200 and "Save permissions" not in shown.text
    assert 'name="grant_group"' not in shown.text and "Your level</dt><dd>use" in shown.text

    forced = [
        ("/envs/tabs-shared/resources/script", {"script": "import os"}),
        ("/envs/tabs-shared/resources/run", {}),
        ("/envs/tabs-shared/resources/delete", {"path": "kept.txt"}),
        ("/envs/tabs-shared/permissions", {"usable_by_all": "on", "owner": "reader"}),
    ]
    for path, data in forced:
        response = post_form(client, path, data)
        assert response.status_code == 403, (path, response.text)
        assert "Not allowed" in response.text
    refused = upload(client, "tabs-shared", "evil.txt", b"x")
    assert refused.status_code == 403 and "Not allowed" in refused.text

    # Nothing changed.
    kept = resources.get_init_script(server.app, admin, "tabs-shared")
    assert kept.script == "print('hi')\n"
    names = [e.path for e in resources.list_files(server.app, admin, "tabs-shared")]
    assert names == ["kept.txt"]
    unchanged = permissions.get_permissions(server.app, admin, "tabs-shared")
    assert unchanged.owner != "reader" and unchanged.grants == []


def test_tab_forms_need_the_csrf_token(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    plain = client.post("/envs/tabs-shared/resources/script", data={"script": "x"})
    assert plain.status_code == 403 and "security token" in plain.text
    multipart = client.post(
        "/envs/tabs-shared/resources/upload",
        data={"csrf": "wrong"},
        files={"file": ("a.txt", b"a", "text/plain")},
    )
    assert multipart.status_code == 403 and "security token" in multipart.text
    granted = client.post("/envs/tabs-shared/permissions", data={"usable_by_all": ""})
    assert granted.status_code == 403
    assert permissions.get_permissions(server.app, Actor.local_admin(), "tabs-shared").usable_by_all


def test_paths_outside_the_resources_are_refused_in_place(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    browse = client.get("/envs/tabs-shared/resources", params={"path": "../x"})
    assert browse.status_code == 200 and 'class="error"' in browse.text
    outside = upload(client, "tabs-shared", "x.txt", b"x", path="../x")
    assert outside.status_code in (404, 422), outside.text
    assert 'class="error"' in outside.text and "Files" in outside.text
    gone = post_form(client, "/envs/tabs-shared/resources/delete", {"path": "../x"})
    assert gone.status_code in (404, 422) and 'class="error"' in gone.text
    missing = client.get("/envs/tabs-shared/resources/download", params={"path": "nothing.txt"})
    assert missing.status_code == 404 and 'class="error"' in missing.text
    empty = client.post(
        "/envs/tabs-shared/resources/upload",
        data={"csrf": session_csrf(client)},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert empty.status_code in (400, 422) and 'class="error"' in empty.text


def test_zip_upload_unpacks_and_folders_can_be_browsed(server: RunningServer) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/a.csv", "a,b\n")
        archive.writestr("data/b.csv", "c,d\n")
    client = console_login(server, "admin", ADMIN_PASSWORD)
    done = upload(client, "tabs-shared", "set.zip", buffer.getvalue(), unzip="on")
    assert done.status_code == 303, done.text
    top = client.get("/envs/tabs-shared/resources")
    assert 'data-path="data"' in top.text and "set.zip" not in top.text
    inside = client.get("/envs/tabs-shared/resources", params={"path": "data"})
    assert 'data-path="data/a.csv"' in inside.text and 'data-path="data/b.csv"' in inside.text
    got = client.get("/envs/tabs-shared/resources/download", params={"path": "data/a.csv"})
    assert got.status_code == 200 and got.content == b"a,b\n"
    assert "attachment" in got.headers["content-disposition"]
    # Upload into the folder being browsed, then delete the folder.
    into = upload(client, "tabs-shared", "c.csv", b"e,f\n", path="data")
    assert into.status_code == 303 and "path=data" in into.headers["location"]
    assert resources.list_files(server.app, Actor.local_admin(), "tabs-shared", "data")[0]
    removed = post_form(client, "/envs/tabs-shared/resources/delete", {"path": "data"})
    assert removed.status_code == 303
    assert 'data-path="data"' not in client.get("/envs/tabs-shared/resources").text


def test_permission_errors_show_in_place(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    owner = permissions.get_permissions(server.app, Actor.local_admin(), "tabs-shared").owner
    unknown = post_form(
        client,
        "/envs/tabs-shared/permissions",
        {"owner": owner, "usable_by_all": "on", "grant_group": "nobody", "grant_level": "use"},
    )
    assert unknown.status_code == 422 and "no group named" in unknown.text
    level = post_form(
        client,
        "/envs/tabs-shared/permissions",
        {"owner": owner, "usable_by_all": "on", "grant_group": "analysts", "grant_level": "x"},
    )
    assert level.status_code == 422 and "unknown level" in level.text
    assert permissions.get_permissions(server.app, Actor.local_admin(), "tabs-shared").grants == []
