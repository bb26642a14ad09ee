"""Design, automation and API nodes end to end: `codenv node`, `GET /api/v1/node` and the
console's header show the kind; spec edits are refused on automation and API nodes from the
CLI and the API (409 / exit 5, field `node`, the kind named) while rollback goes on; a wrong
`nodeType` is refused clearly; `show` says where the install options come from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest

from codenv.services.actor import Actor
from conftest import Node
from support.access import PASSWORD, user_in
from support.browser import chromium, log_in
from support.pkgindex import PackageIndex
from support.server import (
    ADMIN_PASSWORD,
    RunningServer,
    console_login,
    post_form,
    running_server,
    wait_for_build,
)

pytestmark = pytest.mark.xdist_group("node-kinds")
API = "/api/v1"
IMPORTED_HERE = "code envs are imported from bundles here, not designed (codenv import FILE)"


def _json_error(result: Any) -> dict[str, Any]:
    return dict(json.loads(result.stdout)["error"])


def test_cli_node_kind_refusals_and_rollback(node: Node, newest: str) -> None:
    shown = json.loads(node.run("node", "--json").stdout)
    assert shown["kind"] == "design" and shown["designs_envs"] is True
    assert shown["version"] and shown["python"].count(".") == 2
    assert shown["sandbox"] == "required"
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--add", "alpha", "--update")

    said = node.run("settings", "set-node-kind", "automation").stdout
    assert said.strip() == "node kind: automation"
    assert json.loads(node.run("node", "--json").stdout)["kind"] == "automation"
    assert "kind: automation" in node.run("node").stdout
    assert json.loads(node.run("settings", "show", "--json").stdout)["node_kind"] == "automation"

    script = node.home.parent / "init.py"
    script.write_text("print('hi')\n")
    attempts = {
        "create": ("create", "other", "--python", newest, "--no-core-packages"),
        "save": ("save", "demo", "--add", "beta"),
        "update": ("update", "demo", "--rebuild"),
        "init script": ("resources", "script", "demo", "--set", str(script)),
    }
    for action, args in attempts.items():
        refused = node.run(*args, "--json", check=False)
        assert refused.returncode == 5, (action, refused.stderr)
        error = _json_error(refused)
        assert error["code"] == "conflict" and error["field"] == "node", action
        assert "this is an automation node: " + IMPORTED_HERE in error["message"], action
        assert refused.stderr.startswith("error [node]: cannot "), action
    assert json.loads(node.run("show", "demo", "--json").stdout)["spec"]["requested"] == "alpha\n"

    rolled = json.loads(node.run("rollback", "demo", "1", "--json").stdout)
    assert rolled["number"] == 1
    assert json.loads(node.run("installed", "demo", "--json").stdout)
    node.run("run", "demo", "--", "python", "-c", "print(1)")


def test_a_wrong_node_type_is_refused_clearly(node: Node, newest: str) -> None:
    config = node.home / "config" / "server.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"nodeType": "Automation"}))
    for args in (("node",), ("create", "demo", "--python", newest, "--no-core-packages")):
        refused = node.run(*args, check=False)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith("error [nodeType]: the node's kind (nodeType in config")
        assert (
            "'design', 'automation', 'api'" in refused.stderr and "'Automation'" in refused.stderr
        )
    usage = node.run("settings", "set-node-kind", "edge", check=False)
    assert usage.returncode == 2 and "edge" in usage.stderr
    node.run("settings", "set-node-kind", "design")
    assert json.loads(node.run("node", "--json").stdout)["kind"] == "design"


def test_show_says_where_install_options_come_from(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    node.run("save", "demo", "--install-options", "--", "--retries", "7")
    node.run("settings", "set-install-options", "--", "--timeout", "30")

    def source() -> dict[str, Any]:
        return dict(json.loads(node.run("show", "demo", "--json").stdout)["options_source"])

    assert source()["install"] == "env" and source()["described"] == "from the env's spec"
    node.run("settings", "set-node-kind", "api")
    node.run("settings", "prevent-override", "--on")
    assert node.run("node", "--json").stdout.count('"prevent_override_from_imported_envs": true')
    assert source() == {
        "install": "node",
        "venv": "node",
        "node_wins": True,
        "described": "from the node's config/server.json (preventOverrideFromImportedEnvs)",
    }
    assert "options source  from the node's config/server.json" in node.run("show", "demo").stdout
    said = node.run("settings", "prevent-override", "--off").stdout
    assert said.strip() == "imported envs keep their own install options"
    assert source()["install"] == "env" and source()["described"] == "from the imported env"
    settings = json.loads(node.run("settings", "show", "--json").stdout)
    assert settings["prevent_override_from_imported_envs"] is False


# --- the API and the console, over real HTTP --------------------------------------------------


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("node-kinds") / "home"
    with running_server(home, sample_index.url) as running:
        user_in(running.app, Actor.local_admin(), "plain")
        yield running


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(server.admin_token()) as client:
        yield client


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, f"{response.request.method} {response.url}: {response.text}"
    return response.json()


def _built_twice(admin: httpx.Client, name: str, python: str) -> None:
    body = {"name": name, "python": python, "install_core_packages": False}
    first = _ok(admin.post(f"{API}/envs", json=body))["build_id"]
    assert wait_for_build(admin, first)["status"] == "succeeded"
    saved = _ok(admin.patch(f"{API}/envs/{name}/spec", json={"requested": "alpha", "update": True}))
    assert wait_for_build(admin, saved["update"]["build_id"])["status"] == "succeeded"


def _remote_cli_sees_the_kind(server: RunningServer, admin: httpx.Client, python: str) -> None:
    token = str(admin.headers["Authorization"]).removeprefix("Bearer ")
    environ = {"CODENV_URL": server.url, "CODENV_TOKEN": token}
    remote = Node(server.app.settings.home.parent / "remote-cli", "http://127.0.0.1:9/s", environ)
    assert json.loads(remote.run("node", "--json").stdout)["kind"] == "api"
    refused = remote.run("create", "other", "--python", python, "--json", check=False)
    assert refused.returncode == 5 and _json_error(refused)["field"] == "node"
    assert "this is an API node" in refused.stderr
    assert remote.run("settings", "prevent-override", "--off").returncode == 0


def test_api_node_kind_and_refusals(
    server: RunningServer, admin: httpx.Client, newest: str
) -> None:
    _built_twice(admin, "served", newest)
    _ok(admin.put(f"{API}/settings/requests", json={"allow": True}))
    plain = server.login("plain", PASSWORD)
    body = {"name": "wanted", "python": newest, "install_core_packages": False}
    asked = _ok(plain.post(f"{API}/requests", json=body))["id"]

    node = _ok(admin.get(f"{API}/node"))
    assert node["kind"] == "design" and node["config_file"].endswith("config/server.json")
    assert _ok(plain.get(f"{API}/node"))["config_file"] is None
    assert plain.put(f"{API}/settings/node-kind", json={"kind": "api"}).status_code == 403
    bad = admin.put(f"{API}/settings/node-kind", json={"kind": "edge"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "nodeType"
    try:
        assert (
            _ok(admin.put(f"{API}/settings/node-kind", json={"kind": "api"}))["node_kind"] == "api"
        )
        _remote_cli_sees_the_kind(server, admin, newest)
        node = _ok(plain.get(f"{API}/node"))
        assert (node["kind"], node["designs_envs"]) == ("api", False)

        attempts = {
            "create": admin.post(f"{API}/envs", json={**body, "name": "other"}),
            "save": admin.patch(f"{API}/envs/served/spec", json={"requested": "beta"}),
            "update": admin.post(f"{API}/envs/served/update", json={"rebuild": True}),
            "init script": admin.put(f"{API}/envs/served/resources/script", json={"script": "1"}),
            "approve": admin.post(f"{API}/requests/{asked}/approve"),
            "request": plain.post(f"{API}/requests", json={**body, "name": "more"}),
        }
        for action, refused in attempts.items():
            assert refused.status_code == 409, (action, refused.text)
            error = refused.json()["error"]
            assert (error["code"], error["field"]) == ("conflict", "node"), action
            assert "this is an API node: " + IMPORTED_HERE in error["message"], action

        rolled = _ok(admin.post(f"{API}/envs/served/rollback", json={"revision": 1}))
        assert rolled["number"] == 1
        _ok(admin.get(f"{API}/envs/served/installed"))
        shown = _ok(admin.get(f"{API}/envs/served"))
        assert shown["options_source"]["described"] == "from the node's config/server.json"
    finally:
        _ok(admin.put(f"{API}/settings/node-kind", json={"kind": "design"}))
        plain.close()


def test_the_console_header_shows_the_kind(server: RunningServer, admin: httpx.Client) -> None:
    assert "data-node-kind" not in httpx.get(f"{server.url}/login").text
    desk = console_login(server, "admin", ADMIN_PASSWORD)
    user = console_login(server, "plain", PASSWORD)
    try:
        for path in ("/", "/account", "/admin/settings"):
            page = desk.get(path)
            assert page.status_code == 200, path
            assert 'data-node-kind="design">design node</span>' in page.text, path
        assert 'href="/new-env"' in desk.get("/").text

        _ok(admin.put(f"{API}/settings/node-kind", json={"kind": "automation"}))
        for client in (desk, user):
            page = client.get("/")
            assert 'data-node-kind="automation">automation node</span>' in page.text
            assert "data-imported-here" in page.text and 'href="/new-env"' not in page.text
        refused = post_form(desk, "/new-env", {"name": "console-made", "python": "3"})
        assert refused.status_code == 409
        assert "this is an automation node: " + IMPORTED_HERE in refused.text.replace("&#39;", "'")
        settings = desk.get("/admin/settings").text
        assert 'data-settings-node-kind="automation"' in settings
        assert 'data-prevent-override="off"' in settings

        saved = post_form(desk, "/admin/settings/prevent-override", {"prevent_override": "on"})
        assert saved.status_code == 200 and 'data-prevent-override="on"' in saved.text
        assert _ok(admin.get(f"{API}/settings"))["prevent_override_from_imported_envs"] is True
        refused = post_form(user, "/admin/settings/prevent-override", {"prevent_override": "on"})
        assert refused.status_code == 403
    finally:
        _ok(admin.put(f"{API}/settings/node-kind", json={"kind": "design"}))
        _ok(admin.put(f"{API}/settings/prevent-override", json={"prevent": False}))
        desk.close()
        user.close()


def test_the_header_in_a_browser(server: RunningServer, admin: httpx.Client) -> None:
    """Debian's headless Chromium (skipped without it, outside CI): a user sees the kind in the
    header of the pages they go through."""
    from playwright.sync_api import expect

    _ok(admin.put(f"{API}/settings/node-kind", json={"kind": "api"}))
    try:
        with chromium() as browser:
            page = cast(Any, browser).new_context().new_page()
            log_in(page, server.url, "plain", PASSWORD)
            for path in ("/", "/account", "/admin/tokens"):
                page.goto(server.url + path)
                kind = page.locator("header.top [data-node-kind]")
                expect(kind).to_have_text("API node")
                expect(kind).to_be_visible()
            expect(page.locator("[data-imported-here]")).to_have_count(0)
            page.goto(server.url + "/")
            expect(page.locator("[data-imported-here]")).to_contain_text("API node")
            page.context.close()
    finally:
        _ok(admin.put(f"{API}/settings/node-kind", json={"kind": "design"}))
