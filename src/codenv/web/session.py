"""Who is looking at a console page: the API's session cookie, and a CSRF check for forms.

Pages reuse the session of `codenv.api.auth` (signed HttpOnly cookie). Every form that changes
something carries the session's CSRF token in a hidden `csrf` field (double submit: compared
with the value signed into the session cookie); a form without it is refused before any
service runs. The login form, used before there is a session, is protected the same way by a
short-lived `codenv_login_csrf` cookie.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from codenv.api.auth import SESSION_COOKIE, client_source, decode_session
from codenv.api.deps import codenv_of
from codenv.domain.errors import PermissionDenied
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.authentication import load_actor

CSRF_FIELD = "csrf"
LOGIN_CSRF_COOKIE = "codenv_login_csrf"
STALE_FORM = (
    "this form was refused: its security token is missing or out of date "
    "(reload the page and try again)"
)


class LoginRequired(Exception):
    """No valid session: the console answers with a redirect to the login page."""


@dataclass(frozen=True)
class Viewer:
    """The caller of a console page."""

    app: Codenv
    actor: Actor
    csrf: str


@dataclass(frozen=True)
class Submitted:
    """The caller of a console form, with the form's fields (CSRF already checked)."""

    app: Codenv
    actor: Actor
    csrf: str
    fields: dict[str, str]
    lists: dict[str, list[str]]

    def text(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def flag(self, name: str) -> bool:
        return self.fields.get(name, "") in ("on", "true", "1", "yes")


def _viewer(request: Request) -> Viewer:
    app = codenv_of(request)
    value = request.cookies.get(SESSION_COOKIE)
    session = decode_session(request.app.state.secret_key, value) if value else None
    if session is None:
        raise LoginRequired
    actor = load_actor(app, session.user_id, source=client_source(request))
    return Viewer(app, actor, session.csrf)


def same_token(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def _submitted(request: Request) -> Submitted:
    viewer = _viewer(request)
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if not same_token(fields.get(CSRF_FIELD, ""), viewer.csrf):
        raise PermissionDenied(STALE_FORM, field=CSRF_FIELD)
    lists: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            lists.setdefault(key, []).append(value)
    return Submitted(viewer.app, viewer.actor, viewer.csrf, fields, lists)


def login_token() -> str:
    return secrets.token_urlsafe(24)


def set_login_token(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        path="/login",
    )


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never `//host` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


ViewerDep = Annotated[Viewer, Depends(_viewer)]
SubmittedDep = Annotated[Submitted, Depends(_submitted)]
