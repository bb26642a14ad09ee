"""Browser sessions: which user a browser is logged in as, and the session's CSRF token.

A session is today a signed cookie (HMAC-SHA256 with the node's secret key; HttpOnly,
SameSite=Strict, Secure over HTTPS) beside a readable `codenv_csrf` cookie that scripts repeat
in a header (double submit). Nothing outside this module knows that: the rest of the server
uses `open_sessions`, `start_session`, `current_session` and `end_session` only, so sessions
kept as rows on the server can replace the cookie's content here alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, Response
from starlette.datastructures import State

SESSION_COOKIE = "codenv_session"
CSRF_COOKIE = "codenv_csrf"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    user_id: int
    expires: int
    csrf: str


def _secret_key(home: Path) -> bytes:
    """The node's signing key, made once (0600) in `config/secret_key`."""
    path = home / "config" / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def open_sessions(state: State, home: Path) -> None:
    """Get the server ready to hand out and check sessions (once, at start-up)."""
    state.session_key = _secret_key(home)


def _key(request: Request) -> bytes:
    key: bytes = request.app.state.session_key
    return key


def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _encode(key: bytes, session: Session) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(session.__dict__).encode())
    return f"{payload.decode()}.{_sign(key, payload)}"


def _decode(key: bytes, value: str) -> Session | None:
    payload, _, signature = value.partition(".")
    if not hmac.compare_digest(_sign(key, payload.encode()), signature):
        return None
    try:
        session = Session(**json.loads(base64.urlsafe_b64decode(payload)))
    except (ValueError, TypeError):
        return None
    return session if session.expires > time.time() else None


def start_session(request: Request, response: Response, user_id: int) -> Session:
    """Log the browser in as `user_id`: the response carries the session."""
    session = Session(user_id, int(time.time()) + SESSION_SECONDS, secrets.token_urlsafe(24))
    secure = request.url.scheme == "https"
    for name, value, httponly in (
        (SESSION_COOKIE, _encode(_key(request), session), True),
        # Readable by the page's scripts, which repeat it in X-CSRF-Token.
        (CSRF_COOKIE, session.csrf, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=SESSION_SECONDS,
            httponly=httponly,
            secure=secure,
            samesite="strict",
            path="/",
        )
    return session


def current_session(request: Request) -> Session | None:
    """The request's valid, unexpired session, or None."""
    value = request.cookies.get(SESSION_COOKIE)
    return _decode(_key(request), value) if value else None


def end_session(_request: Request, response: Response) -> None:
    """Log the browser out (the request is part of the interface: a session kept as a row on
    the server is found through it)."""
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
