"""Conditional requests: what the console and the CLI poll (envs, builds) answers 304 while it
has not changed, over real HTTP on the real server (builds by the fake installer)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

import support.server
from codenv.backends.fake import FakeInstaller
from codenv.domain.spec import EnvSpec
from codenv.http.etag import body_tag, tag_matches
from codenv.services import builds, envs
from codenv.services.actor import Actor
from codenv.services.app import open_codenv
from support.server import RunningServer, running_server

UNUSED_INDEX = "http://127.0.0.1:9/simple"


def _finish(server: RunningServer, build_id: str) -> None:
    deadline = time.monotonic() + 60
    while not builds.get_build(server.app, Actor.local_admin(), build_id).finished:
        assert time.monotonic() < deadline, f"build {build_id} did not finish"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, newest: str) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("etag") / "home"
    fake = FakeInstaller()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            support.server, "open_codenv", partial(open_codenv, installer=fake, editables=fake)
        )
        with running_server(home, UNUSED_INDEX) as running:
            created = envs.create_env(running.app, Actor.local_admin(), "polled", EnvSpec(newest))
            _finish(running, str(created.build_id))
            yield running


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(server.admin_token()) as client:
        yield client


@pytest.mark.parametrize("path", ["/api/v1/envs", "/api/v1/envs/polled"])
def test_an_unchanged_answer_is_a_304_with_no_body(admin: httpx.Client, path: str) -> None:
    first = admin.get(path)
    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert tag.startswith('W/"') and first.headers["Cache-Control"] == "private, no-cache"
    again = admin.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == tag and "content-type" not in again.headers
    # A stale tag, or none: the whole answer.
    stale = admin.get(path, headers={"If-None-Match": 'W/"0000"'})
    assert stale.status_code == 200 and stale.json() == first.json()


def test_a_build_polled_until_it_ends_changes_tag_when_it_changes(
    server: RunningServer, admin: httpx.Client
) -> None:
    before = admin.get("/api/v1/envs/polled")
    queued = admin.post("/api/v1/envs/polled/update", json={"rebuild": True})
    assert queued.status_code == 200, queued.text
    build_id = queued.json()["build_id"]
    _finish(server, build_id)
    build = admin.get(f"/api/v1/builds/{build_id}")
    assert build.json()["status"] == "succeeded"
    tag = build.headers["ETag"]
    again = admin.get(f"/api/v1/builds/{build_id}", headers={"If-None-Match": tag})
    assert again.status_code == 304
    # The env changed (a new revision): its old tag no longer matches.
    after = admin.get("/api/v1/envs/polled", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]


def test_what_is_not_polled_json_is_left_alone(server: RunningServer, admin: httpx.Client) -> None:
    build_id = admin.get("/api/v1/envs/polled").json()["last_build"]["id"]
    log = admin.get(f"/api/v1/builds/{build_id}/log")
    assert log.status_code == 200 and "etag" not in log.headers  # text, read by offset
    missing = admin.get("/api/v1/envs/nope")
    assert missing.status_code == 404 and "etag" not in missing.headers
    page = admin.get("/login")
    assert page.status_code == 200 and "etag" not in page.headers


def test_tags_compare_weakly_and_in_lists() -> None:
    tag = body_tag(b'{"a":1}')
    assert tag == body_tag(b'{"a":1}') != body_tag(b'{"a":2}')
    assert tag_matches(tag, tag) and tag_matches(tag.removeprefix("W/"), tag)
    assert tag_matches(f'W/"x", {tag}', tag) and tag_matches("*", tag)
    assert not tag_matches('W/"x"', tag)
