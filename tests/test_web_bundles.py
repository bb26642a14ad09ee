"""Bundles in the console: Export on an env's page downloads the bundle; Import a bundle (from
the code envs list) uploads one and shows the report, each env with its import build's log.
Driven in Chromium (Debian's, through Playwright; same skip rule as the other browser tests);
refusals, CSRF and a tampered upload over plain HTTP.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from codenv.domain.spec import EnvSpec
from codenv.http.limits import limit_for
from codenv.services import envs, permissions
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
    session_csrf,
    wait_for_build,
)

pytestmark = pytest.mark.xdist_group("web-bundles")
BUILD_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-bundles") / "home"
    with running_server(home, sample_index.url) as running:
        admin = Actor.local_admin()
        user_in(running.app, admin, "viewer")
        created = envs.create_env(
            running.app, admin, "bundled", EnvSpec(python=newest, requested="beta\n")
        )
        with running.client(running.admin_token()) as client:
            assert wait_for_build(client, str(created.build_id))["status"] == "succeeded"
            # An env whose only build fails has nothing to export.
            spec = EnvSpec(python=newest, requested="no-such-package\n")
            failing = envs.create_env(running.app, admin, "unbuilt", spec)
            assert wait_for_build(client, str(failing.build_id))["status"] == "failed"
        permissions.set_permissions(running.app, admin, "bundled", usable_by_all=True)
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def manifest_of(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        source = tar.extractfile("manifest.json")
        assert source is not None
        return dict(json.loads(source.read()))


def env_names(server: RunningServer) -> list[str]:
    return [env.name for env in envs.list_envs(server.app, Actor.local_admin())]


def test_export_and_import_in_the_browser(
    server: RunningServer, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    try:
        page = context.new_page()
        log_in(page, server.url, "admin", ADMIN_PASSWORD)

        # Export, from the env's page, with its wheels.
        page.goto(server.url + "/envs/bundled")
        page.click(".bar >> text=Export")
        page.wait_for_url(server.url + "/envs/bundled/export")
        page.check("input[name=with_wheels]")
        shot(page, "env-export")
        with page.expect_download(timeout=BUILD_TIMEOUT_MS) as downloading:
            page.click("button:text('Download the bundle')")
        download = downloading.value
        assert download.suggested_filename == "bundled.codenv.tar"
        saved = tmp_path / "bundled.codenv.tar"
        download.save_as(str(saved))
        manifest = manifest_of(saved)
        assert [env["name"] for env in manifest["envs"]] == ["bundled"]
        assert manifest["envs"][0]["with_wheels"] is True
        assert any("/wheels/beta-" in name for name in manifest["files"])

        # Import it under another name, from the code envs list.
        page.goto(server.url + "/")
        page.click("text=Import a bundle")
        page.wait_for_url(server.url + "/bundles/import")
        page.set_input_files("input[name=file]", str(saved))
        page.fill("input[name=as_name]", "bundled-copy")
        page.check("input[name=offline]")
        page.select_option("select[name=mode]", "INSTALL_IF_MISSING")
        page.click("#import-form button[type=submit]")
        row = page.locator("#import-report tr[data-env='bundled-copy']")
        expect(row).to_contain_text("queued")
        expect(row).to_contain_text("import build")
        expect(page.locator("#import-report h2")).to_contain_text("bundled.codenv.tar")
        shot(page, "import-bundle")
        link = row.locator("a[data-build]")
        build_id = link.get_attribute("data-build")
        assert build_id
        link.click()
        page.wait_for_url(re.compile(rf"/envs/bundled-copy/revisions\?build={build_id}"))
        status = page.locator("[data-build-status]")
        expect(status).to_have_text(re.compile("succeeded|failed"), timeout=BUILD_TIMEOUT_MS)
        expect(status).to_have_text("succeeded")
        assert "bundled-copy" in env_names(server)
    finally:
        context.close()


def import_form(client: httpx.Client, body: bytes, **fields: str) -> httpx.Response:
    return client.post(
        "/bundles/import",
        data={"csrf": session_csrf(client), **fields},
        files={"file": ("some.codenv.tar", body, "application/x-tar")},
    )


def test_export_and_import_controls_follow_the_rights(server: RunningServer) -> None:
    client = console_login(server, "viewer", PASSWORD)
    page = client.get("/envs/bundled")
    assert page.status_code == 200 and "/envs/bundled/export" not in page.text
    assert "Import a bundle" not in client.get("/").text
    shown = client.get("/envs/bundled/export")
    assert "Only users who may change this env can export it" in shown.text
    forced = post_form(client, "/envs/bundled/export", {"with_wheels": "on"})
    assert forced.status_code == 403 and "Not allowed" in forced.text

    admin = console_login(server, "admin", ADMIN_PASSWORD)
    assert 'href="/bundles/import"' in admin.get("/").text
    assert 'href="/envs/bundled/export"' in admin.get("/envs/bundled").text
    nothing = post_form(admin, "/envs/unbuilt/export", {})
    assert nothing.status_code == 404 and 'class="error"' in nothing.text
    assert "active revision" in nothing.text


def test_forms_need_the_csrf_token(server: RunningServer) -> None:
    admin = console_login(server, "admin", ADMIN_PASSWORD)
    export = admin.post("/envs/bundled/export", data={"csrf": "wrong"})
    assert export.status_code == 403 and "security token" in export.text
    upload = admin.post(
        "/bundles/import",
        data={"csrf": "wrong"},
        files={"file": ("x.tar", b"x", "application/x-tar")},
    )
    assert upload.status_code == 403 and "security token" in upload.text
    # Both import routes take uploads: the upload limit, not the limit of other forms.
    for path in ("/bundles/import", "/api/v1/bundles/import"):
        assert limit_for(server.app.settings, "POST", path).setting == "max_bundle_bytes"
    assert limit_for(server.app.settings, "POST", "/envs/x/export").setting == "max_body_bytes"


def test_a_tampered_bundle_is_refused_in_place(server: RunningServer) -> None:
    admin = console_login(server, "admin", ADMIN_PASSWORD)
    exported = post_form(admin, "/envs/bundled/export", {})
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/x-tar"
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(exported.content)) as tar:
        for member in tar:
            found[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    member = "envs/bundled/spec.json"
    found[member] = found[member].replace(b'"beta', b'"gamma')
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in found.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    before = env_names(server)
    refused = import_form(admin, buffer.getvalue(), as_name="tampered")
    assert refused.status_code == 422, refused.text
    assert member in refused.text and 'class="error"' in refused.text
    assert 'id="import-form"' in refused.text and 'value="tampered"' in refused.text
    assert env_names(server) == before
    unknown = import_form(admin, buffer.getvalue(), mode="SOMETIMES")
    assert unknown.status_code == 422 and 'data-field="mode"' in unknown.text
