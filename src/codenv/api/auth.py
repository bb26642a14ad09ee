"""Who is calling: an API token (`Authorization: Bearer cdv_…`) or a browser session cookie.

Sessions are signed cookies (HMAC-SHA256 with the node's secret key), HttpOnly and SameSite=Strict,
Secure over HTTPS. A request authenticated by its cookie that changes anything must repeat the
session's CSRF token in `X-CSRF-Token` (double submit); token-authenticated clients need not.
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

from codenv.domain.errors import AuthenticationFailed, PermissionDenied
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.authentication import load_actor
from codenv.services.tokens import authenticate_token

SESSION_COOKIE = "codenv_session"
CSRF_COOKIE = "codenv_csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
REQUIRED = "authentication required: send an API token (Authorization: Bearer …) or log in"


def secret_key(home: Path) -> bytes:
    """The node's signing key, made once (0600) in `config/secret_key`."""
    path = home / "config" / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


@dataclass(frozen=True)
class Session:
    user_id: int
    expires: int
    csrf: str


def _sign(key: bytes, payload: bytes) -> str:
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def encode_session(key: bytes, session: Session) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(session.__dict__).encode())
    return f"{payload.decode()}.{_sign(key, payload)}"


def decode_session(key: bytes, value: str) -> Session | None:
    payload, _, signature = value.partition(".")
    if not hmac.compare_digest(_sign(key, payload.encode()), signature):
        return None
    try:
        session = Session(**json.loads(base64.urlsafe_b64decode(payload)))
    except (ValueError, TypeError):
        return None
    return session if session.expires > time.time() else None


def start_session(response: Response, request: Request, key: bytes, user_id: int) -> str:
    session = Session(user_id, int(time.time()) + SESSION_SECONDS, secrets.token_urlsafe(24))
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(key, session),
        max_age=SESSION_SECONDS,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        session.csrf,
        max_age=SESSION_SECONDS,
        httponly=False,
        secure=secure,
        samesite="strict",
        path="/",
    )
    return session.csrf


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


def client_source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _from_cookie(app: Codenv, request: Request, key: bytes) -> Actor | None:
    value = request.cookies.get(SESSION_COOKIE)
    session = decode_session(key, value) if value else None
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, ""), session.csrf
    ):
        raise PermissionDenied("missing or wrong CSRF token (X-CSRF-Token header)", field="csrf")
    return load_actor(app, session.user_id, source=client_source(request))


def authenticate(app: Codenv, request: Request, key: bytes) -> Actor | None:
    """The caller, or None for an anonymous request."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return authenticate_token(app, header[7:], source=client_source(request))
    return _from_cookie(app, request, key)


def require_actor(actor: Actor | None) -> Actor:
    if actor is None:
        raise AuthenticationFailed(REQUIRED)
    return actor
