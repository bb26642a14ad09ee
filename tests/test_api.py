"""The REST API over real HTTP: error shape, builds and logs, tokens, requests, OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.pkgindex import PackageIndex
from support.server import RunningServer, running_server, wait_for_build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(tmp_path: Path, sample_index: PackageIndex) -> Iterator[RunningServer]:
    with running_server(tmp_path / "home", sample_index.url) as running:
        yield running


def _error(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) - {"line"} == {"code", "message", "field"}
    return dict(body["error"])


def test_every_error_has_one_shape(server: RunningServer, newest: str) -> None:
    anonymous = server.client()
    assert anonymous.get("/api/v1/envs").status_code == 401
    assert _error(anonymous.get("/api/v1/envs"))["code"] == "authentication_failed"
    admin = server.client(server.admin_token())

    missing = admin.get("/api/v1/envs/nope")
    assert missing.status_code == 404
    assert _error(missing) == {
        "code": "not_found",
        "message": "no code env named 'nope'",
        "field": "name",
    }
    bad_name = admin.post("/api/v1/envs", json={"name": "bad name", "python": newest})
    assert bad_name.status_code == 422 and _error(bad_name)["field"] == "name"
    assert _error(bad_name)["code"] == "invalid_request"  # a name is no spec
    no_python = admin.post("/api/v1/envs", json={"name": "x"})
    assert no_python.status_code == 422 and _error(no_python)["field"] == "python"
    bad_line = admin.post(
        "/api/v1/envs", json={"name": "x", "python": newest, "requested": "alpha\n-r other.txt"}
    )
    assert bad_line.status_code == 422 and "line 2" in str(_error(bad_line)["message"])
    assert {key: _error(bad_line)[key] for key in ("code", "field", "line")} == {
        "code": "invalid_spec",
        "field": "requested",
        "line": 2,
    }
    unknown_route = admin.get("/api/v1/nothing-here")
    assert unknown_route.status_code == 404 and _error(unknown_route)["code"] == "not_found"


def test_create_update_logs_installed_rollback(server: RunningServer, newest: str) -> None:
    admin = server.client(server.admin_token())
    created = admin.post(
        "/api/v1/envs", json={"name": "demo", "python": newest, "install_core_packages": False}
    )
    assert created.status_code == 202
    assert wait_for_build(admin, created.json()["build_id"])["status"] == "succeeded"

    saved = admin.patch("/api/v1/envs/demo/spec", json={"add": ["beta"], "update": True})
    build_id = saved.json()["update"]["build_id"]
    streamed = admin.get(f"/api/v1/builds/{build_id}/log/stream").text
    assert "revision 2 is active" in streamed
    log = admin.get(f"/api/v1/builds/{build_id}/log", params={"offset": 0})
    assert log.headers["X-Build-Finished"] == "true" and log.text == streamed
    installed = admin.get("/api/v1/envs/demo/installed").json()
    assert (installed["env"], installed["revision"]) == ("demo", 2)
    assert {p["name"] for p in installed["packages"]} == {"alpha", "beta"}
    assert installed["diff"] == {
        "previous": 1,
        "added": [{"name": "alpha", "version": "1.0"}, {"name": "beta", "version": "2.0"}],
        "removed": [],
        "changed": [],
    }
    first = admin.get("/api/v1/envs/demo/installed", params={"revision": 1}).json()
    assert (first["packages"], first["diff"]) == ([], None)
    up_to_date = admin.post("/api/v1/envs/demo/update", json={}).json()
    assert up_to_date["up_to_date"] is True

    rolled = admin.post("/api/v1/envs/demo/rollback", json={"revision": 1})
    assert rolled.json()["number"] == 1
    shown = admin.get("/api/v1/envs/demo").json()
    assert shown["active_revision"] == 1
    assert shown["capabilities"] == {
        "may_use": True,
        "may_update": True,
        "may_manage_users": True,
        "may_delete": True,
    }
    assert [r["number"] for r in admin.get("/api/v1/envs/demo/revisions").json()] == [2, 1]


def test_token_revocation_and_expiry_take_effect_at_once(server: RunningServer) -> None:
    admin = server.login("admin", "admin-password-for-tests")
    token = admin.post("/api/v1/tokens", json={"name": "short"}).json()
    client = server.client(token["secret"])
    assert client.get("/api/v1/envs").status_code == 200
    assert admin.delete(f"/api/v1/tokens/{token['id']}").status_code == 200
    assert client.get("/api/v1/envs").status_code == 401

    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    expiring = admin.post("/api/v1/tokens", json={"name": "soon", "expires_at": soon}).json()
    client = server.client(expiring["secret"])
    assert client.get("/api/v1/envs").status_code == 200
    import time

    time.sleep(1.2)
    assert client.get("/api/v1/envs").status_code == 401
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    late = admin.post("/api/v1/tokens", json={"name": "late", "expires_at": past})
    assert late.status_code == 422 and _error(late) == {
        "code": "invalid_request",
        "message": "the expiry must be in the future",
        "field": "expires_at",
    }
    listed = admin.get("/api/v1/tokens").json()
    assert all("secret" not in token and "hash" not in json.dumps(token) for token in listed)


def test_cookie_sessions_need_the_csrf_token(server: RunningServer, newest: str) -> None:
    browser = server.login("admin", "admin-password-for-tests")
    csrf = browser.headers.pop("X-CSRF-Token")
    forged = browser.post("/api/v1/envs", json={"name": "forged", "python": newest})
    assert forged.status_code == 403 and _error(forged)["field"] == "csrf"
    assert browser.get("/api/v1/envs").status_code == 200  # reading needs no CSRF token
    browser.headers["X-CSRF-Token"] = csrf
    assert browser.delete("/api/v1/session").status_code == 204


def test_request_flow_from_both_sides(server: RunningServer, newest: str) -> None:
    admin = server.client(server.admin_token())
    admin.post("/api/v1/users", json={"name": "ana", "password": "ana-password-123"})
    ana = server.login("ana", "ana-password-123")
    spec = {
        "name": "ana-env",
        "python": newest,
        "install_core_packages": False,
        "requested": "beta",
        "message": "for my project",
    }

    refused = ana.post("/api/v1/requests", json=spec)
    assert refused.status_code == 403 and "turned off" in _error(refused)["message"]
    admin.put("/api/v1/settings/requests", json={"allow": True})
    assert ana.post("/api/v1/envs", json=spec).status_code == 403
    invalid = ana.post("/api/v1/requests", json={**spec, "requested": "beta\n--pre"})
    assert invalid.status_code == 422 and _error(invalid)["field"] == "requested"
    submitted = ana.post("/api/v1/requests", json=spec).json()
    rejected_one = ana.post("/api/v1/requests", json={**spec, "name": "other-env"}).json()

    inbox = admin.get("/api/v1/requests").json()
    assert sorted(r["name"] for r in inbox if r["status"] == "pending") == ["ana-env", "other-env"]
    approved = admin.post(f"/api/v1/requests/{submitted['id']}/approve").json()
    assert wait_for_build(admin, approved["build_id"])["status"] == "succeeded"
    admin.post(f"/api/v1/requests/{rejected_one['id']}/reject", json={"reason": "duplicate"})

    mine = {r["name"]: r for r in ana.get("/api/v1/requests", params={"mine": True}).json()}
    assert mine["ana-env"]["status"] == "approved"
    assert (mine["other-env"]["status"], mine["other-env"]["reason"]) == ("rejected", "duplicate")
    page = ana.get("/api/v1/requests", params={"mine": True, "limit": 1}).json()
    assert [r["name"] for r in page["items"]] == ["other-env"] and page["next_cursor"]
    last = ana.get("/api/v1/requests", params={"mine": True, "cursor": page["next_cursor"]})
    assert [r["name"] for r in last.json()["items"]] == ["ana-env"]
    assert ana.get("/api/v1/requests", params={"limit": 1}).status_code == 403
    env = ana.get("/api/v1/envs/ana-env").json()
    assert env["owner"] == "ana" and env["active_revision"] == 1


def test_openapi_schema_is_served_and_exported(server: RunningServer) -> None:
    served = server.client().get("/openapi.json").json()
    assert "/api/v1/envs/{name}" in served["paths"]
    exported = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert exported == served, "docs/openapi.json is out of date: run scripts/gen-docs"
