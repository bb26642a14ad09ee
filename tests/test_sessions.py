"""Browser sessions are rows on the server: they end at logout, password change, reset, disable
and delete, expire when idle or old, cannot be forged, and administrators list and end them.

Over real HTTP (the server on loopback): a "browser" is an httpx client holding the cookies;
its next request after the session ended is refused (API: 401; console: the login page).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from codenv.services import accounts, sessions
from codenv.services.actor import Actor
from codenv.services.authentication import load_actor
from codenv.services.sessions import SessionPolicy
from codenv.storage.models import CodeEnvRow, SessionRow, utcnow
from support.access import PASSWORD, user_in
from support.pkgindex import PackageIndex
from support.server import (
    ADMIN_PASSWORD,
    RunningServer,
    console_login,
    post_form,
    running_server,
)

ADMIN = Actor.local_admin()
OLD_KEY = "0123456789abcdef" * 4


@pytest.fixture
def server(tmp_path: Path, sample_index: PackageIndex) -> Iterator[RunningServer]:
    home = tmp_path / "home"
    # A node from before sessions were rows: its signing key is still there.
    (home / "config").mkdir(parents=True)
    (home / "config" / "secret_key").write_text(OLD_KEY)
    with running_server(home, sample_index.url) as running:
        for name in ("ada", "bob"):
            user_in(running.app, ADMIN, name)
        yield running


@pytest.fixture
def admin(server: RunningServer) -> httpx.Client:
    return server.client(server.admin_token())


def user_id(server: RunningServer, name: str) -> int:
    return accounts.get_user(server.app, ADMIN, name).id


def alive(client: httpx.Client) -> bool:
    status = client.get("/api/v1/me").status_code
    assert status in (200, 401), status
    return status == 200


def stolen(server: RunningServer, client: httpx.Client) -> httpx.Client:
    """Another client holding a copy of `client`'s session cookie (as a thief would)."""
    copy = httpx.Client(base_url=server.url, timeout=60)
    copy.cookies.set("codenv_session", client.cookies["codenv_session"])
    return copy


def test_the_cookie_holds_a_random_secret_and_the_row_only_its_hash(
    server: RunningServer,
) -> None:
    response = httpx.post(
        server.url + "/api/v1/session",
        json={"name": "ada", "password": PASSWORD},
        headers={"User-Agent": "tests/" + "x" * 400},
    )
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("codenv_session="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert "Path=/" in session_cookie and "Max-Age=43200" in session_cookie
    secret = session_cookie.split(";")[0].split("=", 1)[1]
    assert len(secret) == 43  # token_urlsafe(32)
    with server.app.db.session() as session:
        row = session.scalars(select(SessionRow)).one()
        assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert row.csrf == response.json()["csrf_token"]
        assert (row.source, row.user_agent) == ("127.0.0.1", ("tests/" + "x" * 400)[:256])


def test_logout_ends_the_session_on_the_server(server: RunningServer) -> None:
    ada = server.login("ada", PASSWORD)
    thief = stolen(server, ada)
    assert alive(thief)
    assert ada.delete("/api/v1/session").status_code == 204
    assert not alive(thief)
    # The console's logout too.
    browser = console_login(server, "ada", PASSWORD)
    copy = stolen(server, browser)
    assert post_form(browser, "/logout", {}).status_code == 303
    page = copy.get("/")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_password_change_or_reset_ends_the_users_sessions(
    server: RunningServer, admin: httpx.Client
) -> None:
    ada, ada_elsewhere, bob = (
        server.login("ada", PASSWORD),
        server.login("ada", PASSWORD),
        server.login("bob", PASSWORD),
    )
    changed = ada.put(
        "/api/v1/users/ada/password",
        json={"new_password": "a new password", "current_password": PASSWORD},
    )
    assert changed.status_code == 204
    assert not alive(ada) and not alive(ada_elsewhere)
    assert alive(bob), "another user's session is untouched"
    again = server.login("ada", "a new password")
    assert admin.put(
        "/api/v1/users/ada/password", json={"new_password": "reset by admin"}
    ).is_success
    assert not alive(again)
    assert alive(server.login("ada", "reset by admin"))


def test_disabling_ends_sessions_and_enabling_revives_none(
    server: RunningServer, admin: httpx.Client
) -> None:
    ada = server.login("ada", PASSWORD)
    browser = console_login(server, "ada", PASSWORD)
    assert admin.patch("/api/v1/users/ada", json={"active": False}).is_success
    assert not alive(ada)
    assert admin.patch("/api/v1/users/ada", json={"active": True}).is_success
    assert not alive(ada)
    assert browser.get("/").status_code == 303
    assert alive(server.login("ada", PASSWORD))


def test_deleting_a_user_ends_their_sessions(server: RunningServer, admin: httpx.Client) -> None:
    bob = server.login("bob", PASSWORD)
    assert bob.delete("/api/v1/users/ada").status_code == 403
    assert admin.delete("/api/v1/users/bob").status_code == 204
    assert not alive(bob)
    assert "bob" not in [user["name"] for user in admin.get("/api/v1/users").json()]
    assert admin.delete("/api/v1/users/bob").status_code == 404
    # A user who owns a code env stays: a new user of the same name would own it.
    with server.app.db.session() as session:
        session.add(CodeEnvRow(name="adas", name_key="adas", owner="ada", spec={}))
    refused = admin.delete("/api/v1/users/ada")
    assert refused.status_code == 409 and "owns code envs (adas)" in refused.text


def test_forged_and_old_format_cookies_are_refused(server: RunningServer) -> None:
    # The signing key of old is gone from the node: nothing reads it any more.
    assert not (server.app.settings.home / "config" / "secret_key").exists()
    payload = base64.urlsafe_b64encode(
        json.dumps({"user_id": 1, "expires": int(time.time()) + 3600, "csrf": "x"}).encode()
    )
    signature = hmac.new(OLD_KEY.encode(), payload, hashlib.sha256).hexdigest()
    for value in (f"{payload.decode()}.{signature}", "A" * 43, "x" * 5000, ""):
        with httpx.Client(base_url=server.url) as forger:
            forger.cookies.set("codenv_session", value)
            assert forger.get("/api/v1/me").status_code == 401
            assert forger.get("/").status_code == 303


def test_an_expired_session_is_refused(server: RunningServer) -> None:
    ada, bob = server.login("ada", PASSWORD), server.login("bob", PASSWORD)
    past = utcnow() - timedelta(seconds=1)
    with server.app.db.session() as session:
        session.execute(update(SessionRow).values(expires_at=past))
    assert not alive(ada) and not alive(bob)
    with server.app.db.session() as session:
        assert session.scalars(select(SessionRow)).all() == []


def test_sessions_expire_when_idle_or_old_and_are_seen_at_most_once_a_minute(
    server: RunningServer,
) -> None:
    app, policy = server.app, SessionPolicy(absolute_seconds=3600, idle_seconds=600)
    ada = load_actor(app, user_id(server, "ada"), source="10.0.0.1")
    start = utcnow()

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    first = sessions.start_session(app, ada, policy=policy, now=start)
    # Active every 9 minutes: never idle for 10, but over after the absolute hour.
    for minute in range(9, 60, 9):
        moment = start + timedelta(minutes=minute)
        assert sessions.resume_session(app, first.secret, policy=policy, now=moment)
    assert sessions.resume_session(app, first.secret, policy=policy, now=at(3600)) is None
    second = sessions.start_session(app, ada, policy=policy, now=start)
    assert sessions.resume_session(app, second.secret, policy=policy, now=at(30))
    with app.db.session() as session:
        seen = session.get(SessionRow, second.id)
        assert seen is not None and seen.last_seen_at == seen.created_at  # 30 s: not written
    assert sessions.resume_session(app, second.secret, policy=policy, now=at(90))
    # Idle for 10 minutes since it was last seen (at 90 s): over.
    assert sessions.resume_session(app, second.secret, policy=policy, now=at(700)) is None


def test_administrators_list_and_end_sessions(server: RunningServer, admin: httpx.Client) -> None:
    browser = console_login(server, "ada", PASSWORD)
    api = server.login("ada", PASSWORD)
    bob = server.login("bob", PASSWORD)
    listed = admin.get("/api/v1/sessions").json()
    ada_sessions = [s for s in listed if s["user"] == "ada"]
    assert len(ada_sessions) == 2 and {s["source"] for s in listed} == {"127.0.0.1"}
    assert set(ada_sessions[0]) == {
        "id",
        "user",
        "created_at",
        "last_seen_at",
        "expires_at",
        "source",
        "user_agent",
    }
    assert "python-httpx" in ada_sessions[0]["user_agent"]
    assert all("secret" not in json.dumps(s) and "csrf" not in json.dumps(s) for s in listed)
    only_bob = admin.get("/api/v1/sessions", params={"user": "bob"}).json()
    assert [s["user"] for s in only_bob] == ["bob"]

    # Ending one session logs that browser out at its next request, and no other.
    console_id = min(s["id"] for s in ada_sessions)  # the console's came first
    ended = admin.delete(f"/api/v1/sessions/{console_id}")
    assert ended.status_code == 200 and ended.json()["user"] == "ada"
    page = browser.get("/")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert alive(api) and alive(bob)
    assert admin.delete(f"/api/v1/sessions/{console_id}").status_code == 404
    assert admin.delete(f"/api/v1/sessions/{2**70}").status_code == 422

    # All of a user's at once.
    assert admin.delete("/api/v1/users/ada/sessions").json() == {"ended": 1}
    assert not alive(api) and alive(bob)
    # Only administrators see or end sessions.
    assert bob.get("/api/v1/sessions").status_code == 403
    assert bob.delete("/api/v1/users/ada/sessions").status_code == 403
    assert alive(bob)
    actions = [entry["action"] for entry in admin.get("/api/v1/audit").json()]
    assert "session.end" in actions and "session.end_all" in actions


def test_the_sessions_page(server: RunningServer) -> None:
    ada = console_login(server, "ada", PASSWORD)
    admin = console_login(server, "admin", ADMIN_PASSWORD)
    page = admin.get("/admin/sessions")
    assert page.status_code == 200 and 'data-user="ada"' in page.text
    assert "(this browser)" in page.text
    assert ada.get("/admin/sessions").status_code == 403
    with server.app.db.session() as session:
        ada_id = session.scalar(
            select(SessionRow.id).where(SessionRow.user_id == user_id(server, "ada"))
        )
    ended = post_form(admin, f"/admin/sessions/{ada_id}/end", {})
    assert ended.status_code == 200 and "The session of ada from 127.0.0.1 ended" in ended.text
    assert ada.get("/").status_code == 303
    again = console_login(server, "ada", PASSWORD)
    all_of = post_form(admin, "/admin/users/ada/sessions/end", {})
    assert all_of.status_code == 200 and "1 session(s) of ada ended" in all_of.text
    assert again.get("/").status_code == 303
