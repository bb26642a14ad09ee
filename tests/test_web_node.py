"""The console in a real browser (Debian's headless Chromium, driven by Playwright; same skip
rule as test_web.py): cancelling a build from Revisions & logs, the warning administrators see
on every page while builds run unsandboxed, the sessions page, and the API docs rendered from
the package under the console's CSP. Screenshots go to docs/screenshots/. Over plain HTTP: the
kept resources page and the settings forms, refused to those who are not administrators.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codenv.domain.spec import EnvSpec
from codenv.services import boxes, builds, envs, permissions, sessions
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
)

pytestmark = pytest.mark.xdist_group("web-node")
ADMIN = Actor.local_admin()
SLEEPER = "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n"
PAGES = ("/", "/new-env", "/admin/settings", "/admin/sessions", "/admin/kept-resources")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-node") / "home"
    with running_server(home, sample_index.url) as running:
        user_in(running.app, ADMIN, "plain")
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _page(browser: Any, server: RunningServer, name: str, password: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, server.url, name, password)
    return page


def test_cancel_a_running_build(server: RunningServer, browser: Any, newest: str) -> None:
    from playwright.sync_api import expect

    spec = EnvSpec(python=newest, resources_init_script=SLEEPER)
    build_id = envs.create_env(server.app, ADMIN, "slow", spec).build_id
    assert build_id is not None
    page = _page(browser, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/envs/slow/revisions?build={build_id}")
    expect(page.locator("#log")).to_contain_text("sleeping", timeout=120_000)
    cancel = page.locator(f"form[data-cancel-build='{build_id}'] button")
    expect(cancel).to_have_text("Cancel")
    shot(page, "env-revisions-cancel")
    cancel.click()
    # The log follows the build until it ends, then the page shows it cancelled.
    expect(page.locator("[data-build-status]")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("form[data-cancel-build]")).to_have_count(0)
    assert builds.get_build(server.app, ADMIN, build_id).status == "cancelled"
    page.context.close()


def test_a_reader_gets_no_cancel_button(server: RunningServer, browser: Any, newest: str) -> None:
    from playwright.sync_api import expect

    spec = EnvSpec(python=newest, resources_init_script=SLEEPER)
    build_id = envs.create_env(server.app, ADMIN, "slow-shared", spec).build_id
    assert build_id is not None
    permissions.set_permissions(server.app, ADMIN, "slow-shared", usable_by_all=True)
    page = _page(browser, server, "plain", PASSWORD)
    page.goto(f"{server.url}/envs/slow-shared/revisions?build={build_id}")
    expect(page.locator("[data-build-status]")).to_have_text(re.compile("queued|running"))
    expect(page.locator("form[data-cancel-build]")).to_have_count(0)
    builds.cancel_build(server.app, ADMIN, build_id)
    page.context.close()


def test_administrators_are_warned_on_every_page_while_builds_run_unsandboxed(
    server: RunningServer, browser: Any, newest: str
) -> None:
    from playwright.sync_api import expect

    spec = EnvSpec(python=newest, install_core_packages=False)
    envs.create_env(server.app, ADMIN, "banner", spec)
    admin = _page(browser, server, "admin", ADMIN_PASSWORD)
    plain = _page(browser, server, "plain", PASSWORD)
    admin.goto(server.url + "/admin/settings")
    expect(admin.locator("[data-node-warning]")).to_have_count(0)
    expect(admin.locator("[data-sandbox]")).to_have_text("in the sandbox")
    admin.click("#sandbox-setting button")  # the confirmation is accepted
    expect(admin.locator("[data-sandbox]")).to_have_text("unsandboxed")
    assert boxes.sandbox_mode(server.app) == "off"
    for path in (*PAGES, "/docs", "/envs/banner"):
        admin.goto(server.url + path)
        warning = admin.locator("[data-node-warning]")
        expect(warning).to_contain_text("builds run unsandboxed:")
    admin.goto(server.url + "/admin/settings")
    shot(admin, "admin-settings-unsandboxed")
    plain.goto(server.url + "/")
    expect(plain.locator("h1").first).to_be_visible()
    expect(plain.locator("[data-node-warning]")).to_have_count(0)
    admin.goto(server.url + "/admin/settings")
    admin.click("#sandbox-setting button")
    expect(admin.locator("[data-sandbox]")).to_have_text("in the sandbox")
    expect(admin.locator("[data-node-warning]")).to_have_count(0)
    admin.context.close()
    plain.context.close()


def test_sessions_page_ends_a_browsers_session(server: RunningServer, browser: Any) -> None:
    from playwright.sync_api import expect

    for name in ("plain", "admin"):  # those of the tests before
        sessions.end_user_sessions(server.app, ADMIN, name)
    plain = _page(browser, server, "plain", PASSWORD)
    admin = _page(browser, server, "admin", ADMIN_PASSWORD)
    admin.goto(server.url + "/admin/sessions")
    row = admin.locator("tr[data-user='plain']")
    expect(row).to_have_count(1)
    expect(admin.locator("tr[data-user='admin']")).to_contain_text("(this browser)")
    shot(admin, "admin-sessions")
    row.locator("button:text('End')").first.click()
    expect(admin.locator("p.notice")).to_contain_text("The session of plain")
    plain.goto(server.url + "/")
    assert "/login" in plain.url
    admin.context.close()
    plain.context.close()


def test_api_docs_render_from_the_package_under_the_csp(
    server: RunningServer, browser: Any
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    requested: list[str] = []
    refused: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(server.url + "/docs")
    assert "/login" in page.url
    log_in(page, server.url, "plain", PASSWORD)
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("codenv")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(
        page.locator(".opblock-summary-path[data-path='/api/v1/envs/{name}']").first
    ).to_be_visible()
    shot(page, "api-docs")
    assert all(url.startswith(server.url) for url in requested), requested
    assert refused == []
    context.close()


# Plain HTTP ----------------------------------------------------------------------------------


def _built(server: RunningServer, name: str, python: str) -> None:
    build_id = envs.create_env(server.app, ADMIN, name, EnvSpec(python=python)).build_id
    assert build_id is not None
    deadline = time.monotonic() + 120
    while not builds.get_build(server.app, ADMIN, build_id).finished:
        assert time.monotonic() < deadline, "the build did not finish"
        time.sleep(0.1)


def test_kept_resources_page(server: RunningServer, newest: str) -> None:
    for name in ("gone", "taker"):
        _built(server, name, newest)
    resources_dir = server.app.settings.envs_dir / "gone" / "resources"
    resources_dir.mkdir(exist_ok=True)
    (resources_dir / "model.bin").write_bytes(b"weights")
    envs.delete_env(server.app, ADMIN, "gone", delete_resources=False)
    plain = console_login(server, "plain", PASSWORD)
    assert plain.get("/admin/kept-resources").status_code == 403
    admin = console_login(server, "admin", ADMIN_PASSWORD)
    page = admin.get("/admin/kept-resources")
    kept_id = re.search(r'data-kept="(gone-[^"]+)"', page.text)
    assert page.status_code == 200 and kept_id, page.text
    assert post_form(plain, f"/admin/kept-resources/{kept_id[1]}/drop", {}).status_code == 403
    missing = post_form(admin, f"/admin/kept-resources/{kept_id[1]}/adopt", {"env": "nope"})
    assert missing.status_code == 404 and "no code env named &#39;nope&#39;" in missing.text
    adopted = post_form(admin, f"/admin/kept-resources/{kept_id[1]}/adopt", {"env": "taker"})
    assert adopted.status_code == 200 and "now has the resources" in adopted.text
    taken = server.app.settings.envs_dir / "taker" / "resources" / "model.bin"
    assert taken.read_bytes() == b"weights"
    assert "Nothing is kept" in adopted.text


def test_settings_forms_for_local_sources_and_proxies(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = console_login(server, "admin", ADMIN_PASSWORD)
    bad = post_form(admin, "/admin/settings/local-source-roots", {"roots": "relative/dir"})
    assert bad.status_code == 422 and 'data-field="roots"' in bad.text
    assert "relative/dir</textarea>" in bad.text
    saved = post_form(admin, "/admin/settings/local-source-roots", {"roots": f"{tmp_path}\n"})
    assert saved.status_code == 200 and "directories were saved" in saved.text
    assert str(tmp_path.resolve()) in saved.text
    wrong = post_form(admin, "/admin/settings/trusted-proxies", {"proxies": "my-proxy"})
    assert wrong.status_code == 422 and 'data-field="proxies"' in wrong.text
    proxies = post_form(admin, "/admin/settings/trusted-proxies", {"proxies": "10.0.0.0/8"})
    assert proxies.status_code == 200 and "10.0.0.0/8</textarea>" in proxies.text
    cleared = post_form(admin, "/admin/settings/trusted-proxies", {"proxies": ""})
    assert cleared.status_code == 200
    plain = console_login(server, "plain", PASSWORD)
    for path, field in (("local-source-roots", "roots"), ("trusted-proxies", "proxies")):
        assert post_form(plain, f"/admin/settings/{path}", {field: ""}).status_code == 403
    assert post_form(plain, "/admin/settings/sandbox", {"mode": "off"}).status_code == 403
    assert boxes.sandbox_mode(server.app) == "required"
