"""Containerized execution in the console: Administration > Containers and the env page's
Containerized execution tab.

In Chromium (Debian's, through Playwright; same skip rule as the other browser tests): an
administrator adds a container config (its password never on the page), an env is set to
build for it and shows its image "not built" with the mapped repository, Build images queues
an image build that fails (the fake installer cannot install an env for an image) and the
table shows the failure and links its log, then removing the config flags it on the env.
Over plain HTTP: refusals for non-administrators and for users without the update right,
CSRF, size limits, and errors in place that never echo the password.

Envs are built with the fake installer (no package index is used): what is tested here is
the console, not image building (tests/test_images.py builds real images).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from functools import partial
from html import unescape
from pathlib import Path
from typing import Any

import pytest

import support.server
from codenv.backends.fake import FakeInstaller
from codenv.domain.containers import (
    MAX_CREDENTIAL_CHARS,
    MAX_ENV_VALUE_CHARS,
    MAX_REF_CHARS,
    ContainerSelection,
    repository_name,
)
from codenv.domain.spec import EnvSpec
from codenv.images.layers import Descriptor
from codenv.images.oci import OCI_CONFIG, canonical_json, image_manifest, write_oci_layout
from codenv.services import builds, containers, envs, images, node_settings, permissions
from codenv.services.actor import Actor
from codenv.services.app import open_codenv
from support.access import PASSWORD, user_in
from support.browser import chromium, log_in, shot
from support.server import (
    ADMIN_PASSWORD,
    RunningServer,
    console_login,
    post_form,
    running_server,
)

pytestmark = pytest.mark.xdist_group("web-containers")
BUILD_TIMEOUT = 120
SECRET = "s3cret-registry-password-9f2c"
REGISTRY = "127.0.0.1:5999/codenv"  # never reached: the fake installer fails first
UNUSED_INDEX = "http://127.0.0.1:9/simple"


def finish(server: RunningServer, build_id: str) -> str:
    deadline = time.monotonic() + BUILD_TIMEOUT
    while not (build := builds.get_build(server.app, Actor.local_admin(), build_id)).finished:
        assert time.monotonic() < deadline, f"build {build_id} did not finish"
        time.sleep(0.05)
    return build.status


def empty_base(path: Path) -> Path:
    """A base image with no layer, as a local OCI layout (tag `base`): enough for an image
    build to get past loading its base."""
    rootfs = {"type": "layers", "diff_ids": []}
    config = canonical_json(
        {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": rootfs}
    )
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = image_manifest(Descriptor(OCI_CONFIG, digest, len(config)), [])
    write_oci_layout(path, manifest, config, [], "base")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, newest: str) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-containers") / "home"
    fake = FakeInstaller()
    with pytest.MonkeyPatch.context() as patch:
        # The real server, with the fake installer for its builds.
        patch.setattr(
            support.server, "open_codenv", partial(open_codenv, installer=fake, editables=fake)
        )
        with running_server(home, UNUSED_INDEX) as running:
            admin = Actor.local_admin()
            user_in(running.app, admin, "plain")
            for name in ("Ml-One", "shared-env"):
                created = envs.create_env(running.app, admin, name, EnvSpec(python=newest))
                assert finish(running, str(created.build_id)) == "succeeded"
            permissions.set_permissions(running.app, admin, "shared-env", usable_by_all=True)
            yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def config_names(server: RunningServer) -> list[str]:
    return [c.name for c in containers.list_container_configs(server.app, Actor.local_admin())]


def ensure_config(server: RunningServer, name: str) -> None:
    """A config the HTTP tests use, whichever of them runs first."""
    if name not in config_names(server):
        new = containers.NewContainerConfig(name, "debian:bookworm", REGISTRY, insecure=True)
        containers.add_container_config(server.app, Actor.local_admin(), new)


# In the browser ------------------------------------------------------------------------------


def _add_in_form(page: Any, base: str, registry: str) -> None:
    page.fill("input[name=name]", "cpu")
    page.fill("input[name=base]", base)
    page.fill("input[name=registry]", registry)
    page.check("input[name=insecure]")
    page.fill("textarea[name=env]", "LANG=C.UTF-8\nTEAM=ml")
    page.fill("input[name=username]", "pusher")
    page.fill("input[name=password]", SECRET)
    page.click("#new-container-config button[type=submit]")


def _admin_adds_a_config(page: Any, url: str, base: str) -> None:
    from playwright.sync_api import expect

    page.goto(url + "/admin/settings")
    page.click("nav.tabs >> text=Containers")
    page.wait_for_url(url + "/admin/containers")
    # A bad registry: the error in place, beside its field; typed values kept, not the password.
    _add_in_form(page, base, "Not A Registry!")
    error = page.locator("p.error[data-field=registry]")
    expect(error).to_contain_text("HOST[:PORT]/REPO")
    expect(page.locator("input[name=registry]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("input[name=name]")).to_have_value("cpu")
    expect(page.locator("input[name=password]")).to_have_value("")
    assert SECRET not in page.content()
    _add_in_form(page, base, REGISTRY)
    expect(page.locator("p.notice")).to_contain_text("Container config cpu was added.")
    row = page.locator("#container-configs tr[data-config=cpu]")
    expect(row).to_contain_text("(password set)")
    expect(row).to_contain_text("pusher")
    expect(row).to_contain_text(REGISTRY)
    expect(row.locator("[data-insecure]")).to_have_text("http")
    expect(row).to_contain_text("/opt/codenv/env-resources")
    expect(row).to_contain_text("TEAM")
    assert SECRET not in page.content()
    shot(page, "containers-admin")


def _wait_for_image(page: Any, url: str, status: str) -> Any:
    from playwright.sync_api import expect

    deadline = time.monotonic() + BUILD_TIMEOUT
    row = page.locator("#images tr[data-image='cpu@1']")
    while row.get_attribute("data-status") != status:
        assert time.monotonic() < deadline, f"the image is still {row.get_attribute('data-status')}"
        time.sleep(0.3)
        page.goto(url + "/envs/Ml-One/containers")
    expect(row.locator("[data-image-status]")).to_have_text(status)
    return row


def test_containers_in_the_browser(server: RunningServer, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base = f"oci:{empty_base(tmp_path / 'base')}:base"
    mapped = repository_name("Ml-One")
    assert mapped != "Ml-One" and mapped.startswith("ml-one.")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        log_in(page, server.url, "admin", ADMIN_PASSWORD)
        _admin_adds_a_config(page, server.url, base)

        # The env's tab: build for the config; its image shows "not built", where it goes.
        page.goto(server.url + "/envs/Ml-One")
        page.click("nav.tabs >> text=Containerized execution")
        page.wait_for_url(server.url + "/envs/Ml-One/containers")
        expect(page.locator("#repository-name")).to_contain_text(
            f"Images of Ml-One go to repository {mapped}"
        )
        expect(page.locator("input[name=mode][value=none]")).to_be_checked()
        page.check("input[name=mode][value=selected]")
        page.check("#containers-form input[name=config][value=cpu]")
        page.check("input[name=resources][value=copy]")
        page.click("#containers-form button[type=submit]")
        expect(page.locator("p.notice")).to_contain_text("Saved.")
        expect(page.locator("#containers-form input[name=config][value=cpu]")).to_be_checked()
        expect(page.locator("input[name=resources][value=copy]")).to_be_checked()
        row = page.locator("#images tr[data-image='cpu@1']")
        expect(row.locator("[data-image-status]")).to_have_text("not built")
        expect(row).to_contain_text(f"{REGISTRY}/{mapped}:r1")
        saved = images.env_images(server.app, Actor.local_admin(), "Ml-One")
        assert (saved.containers, saved.resources) == ("cpu", "copy")

        # Build images: the build is queued, then fails; the table says why and links its log.
        page.click("#build-images button[type=submit]")
        expect(page.locator("p.notice")).to_contain_text("Image builds queued")
        row = _wait_for_image(page, server.url, "failed")
        build_id = row.locator("a[data-build]").get_attribute("data-build")
        assert build_id
        error = builds.get_build(server.app, Actor.local_admin(), build_id).error
        assert error and "the fake installer cannot install an env for an image" in error
        expect(row.locator("[data-image-error]")).to_have_text(error)
        expect(row.locator("button")).to_have_text("Rebuild")
        shot(page, "env-containers")
        row.locator("a[data-build]").click()
        page.wait_for_url(re.compile(rf"/envs/Ml-One/revisions\?build={build_id}"))
        expect(page.locator("[data-build-status]")).to_have_text("failed")
        expect(page.locator("#log")).to_contain_text("(config cpu)")

        # The local revision is untouched; the config removed (confirmed): flagged on the env.
        assert envs.show_env(server.app, Actor.local_admin(), "Ml-One").status == "ready"
        page.goto(server.url + "/admin/containers")
        page.click("#container-configs tr[data-config=cpu] button:text('Remove')")
        expect(page.locator("p.notice")).to_contain_text("Container config cpu was removed.")
        expect(page.locator("#container-configs tr[data-config=cpu]")).to_have_count(0)
        page.goto(server.url + "/envs/Ml-One/containers")
        expect(page.locator("[data-missing-config=cpu]")).to_contain_text(
            "Container config cpu no longer exists"
        )
        choice = page.locator("#config-choices label:has(input[value=cpu])")
        expect(choice.locator("[data-missing]")).to_have_text("no longer exists")
        expect(page.locator("#build-images")).to_have_count(0)
    finally:
        context.close()


# Over plain HTTP ------------------------------------------------------------------------------


def test_only_administrators_manage_configs(server: RunningServer) -> None:
    ensure_config(server, "kept-config")
    client = console_login(server, "plain", PASSWORD)
    page = client.get("/admin/containers")
    assert page.status_code == 403 and "Not allowed" in page.text
    assert "new-container-config" not in page.text
    rogue = {"name": "rogue", "base": "debian", "registry": REGISTRY}
    added = post_form(client, "/admin/containers", rogue)
    assert added.status_code == 403
    removed = post_form(client, "/admin/containers/kept-config/remove", {})
    assert removed.status_code == 403
    assert "kept-config" in config_names(server) and "rogue" not in config_names(server)
    # Administrators' forms need the session's CSRF token.
    admin = console_login(server, "admin", ADMIN_PASSWORD)
    assert 'href="/admin/containers"' in admin.get("/admin/settings").text
    for token in ("", "wrong"):
        refused = admin.post("/admin/containers", data={"csrf": token, "name": "nocsrf"})
        assert refused.status_code == 403
    refused = admin.post("/admin/containers/kept-config/remove", data={"csrf": "wrong"})
    assert refused.status_code == 403
    assert "kept-config" in config_names(server) and "nocsrf" not in config_names(server)


def test_add_form_limits_and_errors_never_echo_the_password(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    form = {
        "name": "limits",
        "base": "debian:bookworm",
        "registry": REGISTRY,
        "username": "pusher",
        "password": SECRET,
    }
    cases = [
        ({"registry": "x" * (MAX_REF_CHARS + 1)}, "registry", 422),
        ({"password": "p" * (MAX_CREDENTIAL_CHARS + 1)}, "password", 422),
        ({"base": "Bad Image!"}, "base", 422),
        ({"env": "NOT A PAIR"}, "env", 422),
        ({"env": "TOKEN=" + "v" * (MAX_ENV_VALUE_CHARS + 200)}, "env", 422),
        ({"env_path": "/etc/env"}, "env_path", 422),
        ({"username": "", "password": SECRET}, "username", 422),
        ({"name": "kept-config"}, "name", 409),
    ]
    ensure_config(server, "kept-config")
    for change, field, status in cases:
        answer = post_form(client, "/admin/containers", {**form, **change})
        assert answer.status_code == status, (change, answer.text[:300])
        assert re.search(rf'<p class="error" role="alert" data-field="{field}">', answer.text)
        assert SECRET not in answer.text and "p" * 100 not in answer.text
        assert re.search(r'<input name="password" type="password"[^>]*>', answer.text)
        assert 'name="password" type="password" value' not in answer.text
    assert "limits" not in config_names(server)
    saved = post_form(client, "/admin/containers", form)
    assert saved.status_code == 200 and "Container config limits was added." in saved.text
    assert SECRET not in saved.text and "(password set)" in saved.text
    audit = client.get("/admin/audit", params={"action": "container.*"})
    assert "container.add" in audit.text and SECRET not in audit.text
    listed = server.client(server.admin_token()).get("/api/v1/containers").json()
    assert SECRET not in json.dumps(listed)


def test_the_tab_without_the_update_right(server: RunningServer) -> None:
    ensure_config(server, "gpu")
    images.set_containers(
        server.app, Actor.local_admin(), "shared-env", ContainerSelection.parse("gpu")
    )
    client = console_login(server, "plain", PASSWORD)
    page = client.get("/envs/shared-env/containers")
    assert page.status_code == 200
    assert "containers-form" not in page.text and "build-images" not in page.text
    assert re.search(r"<dd data-containers>gpu</dd>", page.text)
    assert "not built" in page.text and f"{REGISTRY}/shared-env:r1" in page.text
    for path, data in (
        ("/envs/shared-env/containers", {"mode": "none", "resources": "none"}),
        ("/envs/shared-env/images/build", {}),
    ):
        refused = post_form(client, path, data)
        assert refused.status_code == 403, path
    shown = images.env_images(server.app, Actor.local_admin(), "shared-env")
    assert shown.containers == "gpu" and not [i for i in shown.images if i.build_id]
    # An env they may not see at all: not found.
    assert client.get("/envs/Ml-One/containers").status_code == 404
    # Once pushed, the image shows its whole reference, its size and what its push sent.
    pushed_image(server, "shared-env", "gpu")
    page = client.get("/envs/shared-env/containers")
    row = re.search(r'<tr data-row data-image="gpu@1".*?</tr>', page.text, re.S)
    assert row, page.text
    assert 'data-status="pushed"' in row[0]
    assert f"<code data-reference>{REGISTRY}/shared-env:r1@{PUSHED_DIGEST}</code>" in row[0]
    assert "11.8 MB" in row[0] and "(2.0 MB sent)" in row[0]
    assert "Rebuild" not in row[0]


PUSHED_DIGEST = "sha256:" + "ab" * 32


def pushed_image(server: RunningServer, env: str, config: str) -> None:
    """The rows a successful image build leaves (image_build._commit): its build succeeded,
    its image has a digest and sizes."""
    from sqlalchemy import select

    from codenv.domain.builds import BuildKind, BuildStatus
    from codenv.storage.models import BuildRow, CodeEnvRow, ImageRow

    with server.app.db.session() as session:
        row = session.scalar(select(CodeEnvRow).where(CodeEnvRow.name == env))
        assert row is not None
        build_id = uuid.uuid4().hex
        session.add(
            BuildRow(id=build_id, env_id=row.id, env_name=env, status=BuildStatus.SUCCEEDED,
                     kind=BuildKind.IMAGE, requested_by="admin", revision=1, step="done")
        )  # fmt: skip
        host, _, prefix = REGISTRY.partition("/")
        session.add(
            ImageRow(env_id=row.id, env_name=env, revision=1, config=config,
                     registry_host=host, repository=f"{prefix}/{env}", tag="r1",
                     build_id=build_id, digest=PUSHED_DIGEST, size_bytes=12_345_678,
                     pushed_bytes=2_100_000)
        )  # fmt: skip


def test_the_tab_shows_errors_in_place(server: RunningServer) -> None:
    ensure_config(server, "gpu")
    client = console_login(server, "admin", ADMIN_PASSWORD)
    path = "/envs/shared-env/containers"
    empty = post_form(client, path, {"mode": "selected", "resources": "init"})
    assert empty.status_code == 422 and "tick at least one container config" in empty.text
    assert 'data-field="containers"' in empty.text
    # What was typed is shown again: "selected" and the resources choice.
    assert re.search(r'value="selected" checked', empty.text)
    assert re.search(r'value="init" checked', empty.text)
    unknown = post_form(client, path, {"mode": "selected", "config": "nope", "resources": "none"})
    assert unknown.status_code == 404 and "no container config named 'nope'" in unescape(
        unknown.text
    )
    bad = post_form(client, path, {"mode": "all", "resources": "everything"})
    assert bad.status_code == 422 and 'data-field="container_resources"' in bad.text
    too_long = post_form(client, path, {"mode": "selected", "config": "c" * 5000})
    assert too_long.status_code == 422 and "at most 4096 characters" in too_long.text
    wrong = post_form(client, "/envs/shared-env/images/build", {"config": "cpu-none"})
    assert wrong.status_code == 422 and "is not built for container config" in wrong.text
    # On a node where envs are imported, not designed: refused beside the form.
    node_settings.set_node_kind(server.app, Actor.local_admin(), "automation")
    try:
        refused = post_form(client, path, {"mode": "all", "resources": "none"})
    finally:
        node_settings.set_node_kind(server.app, Actor.local_admin(), "design")
    assert refused.status_code == 409 and 'data-field="node"' in refused.text
    form_part = refused.text.split("<h2>Images</h2>")[0]
    assert "code envs are imported from bundles here" in form_part
    all_configs = post_form(client, path, {"mode": "all", "resources": "none"})
    assert all_configs.status_code == 303
    assert images.env_images(server.app, Actor.local_admin(), "shared-env").containers == "all"
