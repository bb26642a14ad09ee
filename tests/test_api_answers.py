"""The reads written straight from the services' views (api/answers.py) answer exactly the
type their route declares in the schema: validating an answer as that type keeps every key
and value (no key the type lacks, none missing, none of another type). Over real HTTP, on a
node whose env was built twice (by the fake installer) and that has another user."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

import support.server
from codenv.api import routes_admin, routes_envs
from codenv.backends.fake import FakeInstaller
from codenv.domain.spec import EnvSpec
from codenv.services import accounts, builds, envs
from codenv.services.actor import Actor
from codenv.services.app import open_codenv
from support.server import RunningServer, running_server, wait_for_build

UNUSED_INDEX = "http://127.0.0.1:9/simple"
ADMIN = Actor.local_admin()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, newest: str) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("answers") / "home"
    fake = FakeInstaller()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            support.server, "open_codenv", partial(open_codenv, installer=fake, editables=fake)
        )
        with (
            running_server(home, UNUSED_INDEX) as running,
            running.client(running.admin_token()) as client,
        ):
            created = envs.create_env(running.app, ADMIN, "answered", EnvSpec(newest))
            wait_for_build(client, str(created.build_id))
            again = builds.request_update(running.app, ADMIN, "answered", rebuild=True)
            wait_for_build(client, str(again.build_id))
            accounts.create_user(running.app, ADMIN, "someone", password=None)
            yield running


def _declared(path: str) -> APIRoute:
    """The route serving GET `path` (a template, as in the schema)."""
    for route in _routes():
        if route.path == path and "GET" in route.methods:
            return route
    raise AssertionError(f"no GET {path}")


def _routes() -> Iterator[APIRoute]:
    for router in (routes_envs.router, routes_admin.router):
        yield from (route for route in router.routes if isinstance(route, APIRoute))


def _exactly_declared(template: str, body: Any) -> None:
    field = _declared(template).response_field
    assert field is not None
    value, errors = field.validate(body, {}, loc=("response",))
    assert not errors, errors
    assert field.serialize(value, by_alias=True) == body


@pytest.mark.parametrize(
    ("template", "url"),
    [
        ("/api/v1/envs", "/api/v1/envs"),
        ("/api/v1/envs", "/api/v1/envs?limit=1"),
        ("/api/v1/envs/{name}", "/api/v1/envs/answered"),
        ("/api/v1/envs/{name}/installed", "/api/v1/envs/answered/installed"),
        ("/api/v1/envs/{name}/installed", "/api/v1/envs/answered/installed?revision=1"),
        ("/api/v1/envs/{name}/builds", "/api/v1/envs/answered/builds"),
        ("/api/v1/envs/{name}/builds", "/api/v1/envs/answered/builds?limit=1"),
        ("/api/v1/users", "/api/v1/users"),
        ("/api/v1/users", "/api/v1/users?limit=1"),
    ],
)
def test_each_answer_is_exactly_its_declared_type(
    server: RunningServer, template: str, url: str
) -> None:
    with server.client(server.admin_token()) as client:
        answer = client.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["ETag"]  # still tagged for conditional requests
    _exactly_declared(template, answer.json())


def test_a_build_answers_its_declared_type_and_errors_keep_their_shape(
    server: RunningServer,
) -> None:
    with server.client(server.admin_token()) as client:
        build_id = client.get("/api/v1/envs/answered/builds?limit=1").json()["items"][0]["id"]
        build = client.get(f"/api/v1/builds/{build_id}")
        missing = client.get("/api/v1/envs/nowhere")
    assert build.status_code == 200 and build.json()["status"] == "succeeded"
    _exactly_declared("/api/v1/builds/{build_id}", build.json())
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "name"


def test_a_page_answer_has_the_views_values(server: RunningServer) -> None:
    """The page's JSON is the view's, value for value (times, nested builds, capabilities)."""
    with server.client(server.admin_token()) as client:
        row = client.get("/api/v1/envs?limit=1").json()["items"][0]
        shown = client.get("/api/v1/envs/answered").json()
    assert row["name"] == shown["name"] == "answered"
    assert row["last_build"] == shown["last_build"]
    assert row["capabilities"] == shown["capabilities"]
    assert row["created_at"] and row["last_build"]["finished_at"].endswith("+00:00")
    assert isinstance(row["last_build"]["duration_seconds"], float)


@pytest.mark.parametrize("url", ["/api/v1/envs", "/api/v1/envs/answered"])
def test_an_anonymous_read_is_refused(server: RunningServer, url: str) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        refused = anonymous.get(url)
    assert refused.status_code == 401
