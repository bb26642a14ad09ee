"""The API of what administrators run the node with, over real HTTP: cancelling builds, the
sandbox and local-source settings, the kept resources of deleted envs, the interpreters' paths,
and the API docs behind login. Each route also refuses those without the right.
"""

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
from support.server import RunningServer, running_server, wait_for_build

API = "/api/v1"
SLEEPER = "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("api-node") / "home"
    # One build at a time: a second one waits in the queue, where it can be cancelled at once.
    with running_server(home, sample_index.url, {"CODENV_MAX_PARALLEL_BUILDS": "1"}) as running:
        user_in(running.app, Actor.local_admin(), "plain")
        yield running


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(server.admin_token()) as client:
        yield client


@pytest.fixture(scope="module")
def plain(server: RunningServer) -> Iterator[httpx.Client]:
    client = server.login("plain", PASSWORD)
    yield client
    client.close()


def _error(response: httpx.Response) -> dict[str, object]:
    return dict(response.json()["error"])


def _create(admin: httpx.Client, name: str, python: str, **spec: object) -> str:
    body = {"name": name, "python": python, "install_core_packages": False, **spec}
    created = admin.post(f"{API}/envs", json=body)
    assert created.status_code == 202, created.text
    return str(created.json()["build_id"])


def _wait_for(admin: httpx.Client, build_id: str, *statuses: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while admin.get(f"{API}/builds/{build_id}").json()["status"] not in statuses:
        assert time.monotonic() < deadline, f"build {build_id} never became {statuses}"
        time.sleep(0.1)


def test_cancel_a_running_and_a_queued_build(
    server: RunningServer, admin: httpx.Client, plain: httpx.Client, newest: str
) -> None:
    running = _create(
        admin, "sleeper", newest, install_core_packages=True, resources_init_script=SLEEPER
    )
    _wait_for(admin, running, "running")
    queued = _create(admin, "waiter", newest)
    assert admin.get(f"{API}/builds/{queued}").json()["status"] == "queued"

    # Who may not update the env is refused: not seen at all, or seen but not changeable.
    unseen = plain.post(f"{API}/builds/{running}/cancel")
    assert unseen.status_code == 404 and _error(unseen)["field"] == "build"
    permissions.set_permissions(server.app, Actor.local_admin(), "sleeper", usable_by_all=True)
    assert plain.post(f"{API}/builds/{running}/cancel").status_code == 403

    cancelled = admin.post(f"{API}/builds/{queued}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    asked = admin.post(f"{API}/builds/{running}/cancel")
    assert asked.status_code == 200 and asked.json()["status"] == "running"
    assert wait_for_build(admin, running, timeout=60)["status"] == "cancelled"
    assert admin.get(f"{API}/envs/sleeper").json()["active_revision"] is None
    again = admin.post(f"{API}/builds/{running}/cancel")
    assert again.status_code == 409 and "already cancelled" in str(_error(again)["message"])
    assert admin.post(f"{API}/builds/nope/cancel").status_code == 404


def test_sandbox_setting(admin: httpx.Client, plain: httpx.Client) -> None:
    assert admin.get(f"{API}/settings").json()["sandbox"] == "required"
    off = admin.put(f"{API}/settings/sandbox", json={"mode": "off"})
    assert off.status_code == 200 and off.json()["sandbox"] == "off"
    audit = admin.get(f"{API}/audit", params={"action": "settings.sandbox_off"}).json()
    assert audit and audit[0]["target"] == "node"
    bad = admin.put(f"{API}/settings/sandbox", json={"mode": "sometimes"})
    assert bad.status_code == 422 and _error(bad)["field"] == "mode"
    assert plain.put(f"{API}/settings/sandbox", json={"mode": "required"}).status_code == 403
    on = admin.put(f"{API}/settings/sandbox", json={"mode": "required"})
    assert on.json()["sandbox"] == "required"


def test_local_source_roots_setting(
    admin: httpx.Client, plain: httpx.Client, tmp_path: Path
) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    saved = admin.put(f"{API}/settings/local-source-roots", json={"roots": [str(sources)]})
    assert saved.status_code == 200
    assert saved.json()["allowed_local_source_roots"] == [str(sources.resolve())]
    relative = admin.put(f"{API}/settings/local-source-roots", json={"roots": ["sources"]})
    assert relative.status_code == 422 and _error(relative)["field"] == "roots"
    refused = plain.put(f"{API}/settings/local-source-roots", json={"roots": []})
    assert refused.status_code == 403
    cleared = admin.put(f"{API}/settings/local-source-roots", json={"roots": []})
    assert cleared.json()["allowed_local_source_roots"] == []


def test_kept_resources_are_listed_adopted_and_dropped(
    admin: httpx.Client, plain: httpx.Client, newest: str
) -> None:
    for name in ("keeper", "heir", "dropped"):
        assert wait_for_build(admin, _create(admin, name, newest))["status"] == "succeeded"
    for name in ("keeper", "dropped"):
        put = admin.put(f"{API}/envs/{name}/resources/files/data.csv", content=b"confidential")
        assert put.status_code == 200, put.text
        deleted = admin.delete(f"{API}/envs/{name}")
        assert deleted.status_code == 200 and deleted.json()["kept_resources"].startswith(name)
    kept = {item["env"]: item for item in admin.get(f"{API}/kept-resources").json()}
    assert set(kept) == {"keeper", "dropped"}
    assert re.fullmatch(r"keeper-\d{8}T\d{6}Z", kept["keeper"]["id"])
    assert kept["keeper"]["size_bytes"] >= len(b"confidential")

    assert plain.get(f"{API}/kept-resources").status_code == 403
    keeper_id = kept["keeper"]["id"]
    stolen = plain.post(f"{API}/kept-resources/{keeper_id}/adopt", json={"env": "heir"})
    assert stolen.status_code == 403
    assert plain.delete(f"{API}/kept-resources/{keeper_id}").status_code == 403

    adopted = admin.post(f"{API}/kept-resources/{keeper_id}/adopt", json={"env": "heir"})
    assert adopted.status_code == 204, adopted.text
    assert admin.get(f"{API}/envs/heir/resources/content/data.csv").content == b"confidential"
    missing = admin.post(f"{API}/kept-resources/{keeper_id}/adopt", json={"env": "heir"})
    assert missing.status_code == 404 and _error(missing)["field"] == "kept"
    assert admin.delete(f"{API}/kept-resources/{kept['dropped']['id']}").status_code == 204
    assert admin.get(f"{API}/kept-resources").json() == []


def test_interpreter_paths_are_for_administrators(admin: httpx.Client, plain: httpx.Client) -> None:
    shown = admin.get(f"{API}/pythons").json()
    assert all(item["path"].startswith("/") for item in shown["interpreters"])
    hidden = plain.get(f"{API}/pythons").json()
    assert hidden["refused"] == []
    assert [item["version"] for item in hidden["interpreters"]] == [
        item["version"] for item in shown["interpreters"]
    ]
    assert all(item["path"] is None for item in hidden["interpreters"])


def test_api_docs_need_a_login_and_load_nothing_from_elsewhere(
    server: RunningServer, plain: httpx.Client
) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        refused = anonymous.get("/docs")
        assert refused.status_code == 303 and refused.headers["location"] == "/login?next=%2Fdocs"
        assert anonymous.get("/redoc").status_code == 404
    page = plain.get("/docs")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/") for source in sources), sources
    for source in sources:
        asset = plain.get(source)
        assert asset.status_code == 200, source
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert plain.get("/docs/assets/swagger-ui-bundle.js.map").status_code == 404
    assert plain.get("/docs/assets/..%2F__init__.py").status_code == 404
