"""Who is calling: an API token (`Authorization: Bearer cdv_…`) or a browser session.

CSRF (double submit): a request authenticated by its session that changes anything must
repeat the session's CSRF token, in the `X-CSRF-Token` header (API) or the hidden `csrf` field
of a console form; token-authenticated clients need not. The login form, used before there is
a session, is protected the same way by a short-lived `codenv_login_csrf` cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

from fastapi import Request, Response

from codenv.domain.errors import AuthenticationFailed, PermissionDenied
from codenv.http.sessions import Session, current_session
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.authentication import load_actor
from codenv.services.tokens import authenticate_token

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
LOGIN_CSRF_COOKIE = "codenv_login_csrf"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
REQUIRED = "authentication required: send an API token (Authorization: Bearer …) or log in"
STALE_FORM = (
    "this form was refused: its security token is missing or out of date "
    "(reload the page and try again)"
)


def client_source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def same_token(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def session_actor(app: Codenv, request: Request, session: Session) -> Actor:
    """The session's user with their rights as of now."""
    return load_actor(app, session.user_id, source=client_source(request))


def _from_session(app: Codenv, request: Request) -> Actor | None:
    session = current_session(request)
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not same_token(
        request.headers.get(CSRF_HEADER, ""), session.csrf
    ):
        raise PermissionDenied("missing or wrong CSRF token (X-CSRF-Token header)", field="csrf")
    return session_actor(app, request, session)


def authenticate(app: Codenv, request: Request) -> Actor:
    """The caller of an API route; AuthenticationFailed for an anonymous request."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return authenticate_token(app, header[7:], source=client_source(request))
    actor = _from_session(app, request)
    if actor is None:
        raise AuthenticationFailed(REQUIRED)
    return actor


def check_form_token(fields: Mapping[str, object], session_csrf: str) -> None:
    """A console form changes nothing unless it carries the session's CSRF token."""
    given = fields.get(CSRF_FIELD)
    if not isinstance(given, str) or not same_token(given, session_csrf):
        raise PermissionDenied(STALE_FORM, field=CSRF_FIELD)


def login_token() -> str:
    return secrets.token_urlsafe(24)


def set_login_token(request: Request, response: Response, token: str) -> None:
    """The login form's token also goes in its own short-lived cookie (path /login)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        path="/login",
    )


def login_token_matches(request: Request, given: str) -> bool:
    return same_token(given, request.cookies.get(LOGIN_CSRF_COOKIE, ""))


def forget_login_token(response: Response) -> None:
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never `//host` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
