"""The web console over plain HTTP: logins, redirects, CSRF on forms, rights on every form.

The browser flows are in test_web.py; these run without a browser."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codenv.services import permissions
from codenv.services.actor import Actor
from support.access import PASSWORD, user_in
from support.pkgindex import PackageIndex
from support.server import ADMIN_PASSWORD, RunningServer, console_login, post_form, running_server

pytestmark = pytest.mark.xdist_group("web-forms")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("web-forms") / "home"
    with running_server(home, sample_index.url) as running:
        admin = Actor.local_admin()
        user_in(running.app, admin, "viewer")
        user_in(running.app, admin, "maker", group="makers", may_create_envs=True)
        client = console_login(running, "admin", ADMIN_PASSWORD)
        response = post_form(client, "/new-env", {"name": "shared", "python": newest})
        assert response.status_code == 303, response.text
        permissions.set_permissions(running.app, admin, "shared", usable_by_all=True)
        wait_idle(client, "shared")
        yield running


def wait_idle(client: httpx.Client, env: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = client.get(f"/api/v1/envs/{env}/builds").json()
        if builds and all(b["status"] in ("succeeded", "failed") for b in builds):
            assert builds[0]["status"] == "succeeded", builds[0]
            return
        time.sleep(0.2)
    raise AssertionError(f"{env} did not finish building")


def test_pages_redirect_to_login_when_not_logged_in(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        for path in ("/", "/new-env", "/envs/shared/packages?x=1"):
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login?next=%2F")
        assert client.post("/envs/shared/rollback", data={"revision": "1"}).status_code == 303


def test_login_refuses_bad_passwords_forged_forms_and_foreign_redirects(
    server: RunningServer,
) -> None:
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token and page.headers["content-security-policy"].startswith("default-src 'self'")
        wrong = client.post(
            "/login", data={"name": "admin", "password": "nope", "csrf": token.group(1)}
        )
        assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
        forged = client.post("/login", data={"name": "admin", "password": ADMIN_PASSWORD})
        assert forged.status_code == 403 and "security token" in forged.text
        token = re.search(r'name="csrf" value="([^"]+)"', forged.text)
        assert token
        fields = {"name": "admin", "password": ADMIN_PASSWORD, "csrf": token.group(1)}
        landed = client.post("/login", data={**fields, "next": "//evil.example/x"})
        assert landed.status_code == 303 and landed.headers["location"] == "/"
        assert client.get("/").status_code == 200
        out = post_form(client, "/logout", {})
        assert out.status_code == 303 and out.headers["location"] == "/login"


def test_form_posts_need_the_session_csrf_token(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    for token in ("", "wrong"):
        response = client.post(
            "/envs/shared/packages",
            data={"csrf": token, "requested": "beta", "action": "save"},
        )
        assert response.status_code == 403
        assert "security token is missing or out of date" in response.text
    assert client.get("/api/v1/envs/shared").json()["spec"]["requested"] == ""


def test_name_check_uses_the_api_rules(server: RunningServer) -> None:
    client = console_login(server, "maker", PASSWORD)
    bad = client.get("/new-env/check", params={"name": "no spaces"}).json()
    assert bad == {
        "ok": False,
        "message": "invalid code env name 'no spaces': use 1 to 64 characters among A-Z, "
        "a-z, digits, underscores and hyphens, not starting with a hyphen",
    }
    taken = client.get("/new-env/check", params={"name": "SHARED"}).json()
    assert not taken["ok"] and "already exists" in taken["message"]
    assert client.get("/new-env/check", params={"name": "fresh-1"}).json()["ok"]


def test_create_errors_show_in_the_form(server: RunningServer) -> None:
    client = console_login(server, "maker", PASSWORD)
    response = post_form(client, "/new-env", {"name": "x y", "python": "3.99"})
    assert response.status_code == 422
    assert "invalid code env name" in response.text and 'value="x y"' in response.text
    response = post_form(client, "/new-env", {"name": "ok-name", "python": "3.99"})
    assert response.status_code == 422
    assert "Python 3.99 is not installed on this node" in response.text


def test_a_user_without_rights_sees_no_controls_and_is_refused(server: RunningServer) -> None:
    client = console_login(server, "viewer", PASSWORD)
    listing = client.get("/")
    assert "Request a code env" in listing.text and "New Python env" not in listing.text
    packages = client.get("/envs/shared/packages")
    assert packages.status_code == 200
    assert "Save and update" not in packages.text and "readonly" in packages.text
    assert "Delete this code env" not in client.get("/envs/shared").text
    assert "Roll back" not in client.get("/envs/shared/revisions").text
    assert client.get("/new-env").status_code == 403
    forced = [
        ("/new-env", {"name": "mine", "python": "3.11"}, "may not create code envs"),
        ("/envs/shared/packages", {"requested": "beta", "action": "update"}, "may not change"),
        ("/envs/shared/rollback", {"revision": "1"}, "may not change"),
        ("/envs/shared/delete", {}, "may delete"),
    ]
    for path, data, words in forced:
        response = post_form(client, path, data)
        assert response.status_code == 403, (path, response.text)
        assert words in response.text
    assert client.get("/envs/nothing-here").status_code == 404


def test_requested_package_errors_name_their_line(server: RunningServer) -> None:
    client = console_login(server, "admin", ADMIN_PASSWORD)
    response = post_form(
        client,
        "/envs/shared/packages",
        {"requested": "beta\n--index-url http://x\n", "action": "save"},
    )
    assert response.status_code == 422
    assert "line 2: option" in response.text and "--index-url http://x</textarea>" in (
        response.text.replace("\n</textarea>", "</textarea>")
    )
    assert "<code>--index-url http://x</code>" in response.text  # the line shown beside


def test_static_files_come_from_the_package(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        css = client.get("/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert client.get("/static/console.js").status_code == 200
        assert client.get("/static/../app.py").status_code == 404
        assert client.get("/static/nothing.js").status_code == 404


def test_console_routes_stay_out_of_the_api_schema(server: RunningServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.url) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert all(path.startswith("/api/v1") for path in paths)
