"""Browser sessions over HTTP: the cookies that carry a session (services/sessions.py keeps the
session itself, as a row).

`codenv_session` holds the session's random secret (HttpOnly, SameSite=Strict, Secure over
HTTPS); `codenv_csrf`, readable by the page's scripts, holds its CSRF token, which they repeat
in a header (double submit). Nothing outside this module knows the cookies: the rest of the
server uses `open_sessions`, `start_session`, `current_session` and `end_session` only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request, Response
from starlette.datastructures import State

from codenv.services import sessions
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.sessions import ActiveSession

SESSION_COOKIE = "codenv_session"
CSRF_COOKIE = "codenv_csrf"
# Before sessions were rows, cookies were signed with this key; nothing uses it any more.
_OLD_SIGNING_KEY = Path("config") / "secret_key"


def open_sessions(_state: State, home: Path) -> None:
    """At start-up: the key that signed the cookies of old goes (a stale secret is no use)."""
    (home / _OLD_SIGNING_KEY).unlink(missing_ok=True)


def start_session(request: Request, response: Response, app: Codenv, actor: Actor) -> str:
    """Log the browser in as `actor` (just authenticated): the response carries the session's
    cookies; returns its CSRF token."""
    agent = request.headers.get("User-Agent", "")
    started = sessions.start_session(app, actor, user_agent=agent)
    secure = request.url.scheme == "https"
    for name, value, httponly in (
        (SESSION_COOKIE, started.secret, True),
        # Readable by the page's scripts, which repeat it in X-CSRF-Token.
        (CSRF_COOKIE, started.csrf, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=started.max_age,
            httponly=httponly,
            secure=secure,
            samesite="strict",
            path="/",
        )
    return started.csrf


def current_session(app: Codenv, request: Request, source: str) -> ActiveSession | None:
    """The request's live session, or None (found once per request)."""
    if not hasattr(request.state, "session"):
        secret = request.cookies.get(SESSION_COOKIE, "")
        request.state.session = sessions.resume_session(app, secret, source=source)
    found: ActiveSession | None = request.state.session
    return found


def end_session(request: Request, response: Response, app: Codenv, source: str) -> None:
    """Log the browser out: its session ends on the server, and its cookies are dropped."""
    sessions.end_session(app, request.cookies.get(SESSION_COOKIE, ""), source=source)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
