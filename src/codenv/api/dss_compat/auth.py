"""Who calls the DSS API: API tokens only, sent the ways DSS clients send them (§1.2).

* `Authorization: Basic base64(TOKEN:)` — what `DSSClient(host, api_key=TOKEN)` sends (the
  token as user, empty password);
* `Authorization: Basic base64(:TOKEN)` — what DSS's REST doc says (the token as password);
* `Authorization: Bearer TOKEN`.

No session cookie (so no CSRF question) and no password login. `X-DKU-ProxyUser: LOGIN` lets
an administrator's token act as that user (`DSSUser.get_client_as()`); anyone else sending it
is refused.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from codenv.domain.errors import AuthenticationFailed, PermissionDenied
from codenv.http.auth import client_source
from codenv.services.accounts import get_user
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.authentication import load_actor
from codenv.services.tokens import authenticate_token

PROXY_USER_HEADER = "X-DKU-ProxyUser"
REQUIRED = (
    "authentication required: send an API token as HTTP Basic user "
    "(DSSClient(host, api_key=TOKEN)) or as Bearer token"
)
_MAX_HEADER = 4096  # an Authorization header longer than this holds no codenv token


def _basic_token(encoded: str) -> str:
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationFailed("malformed HTTP Basic credentials") from None
    user, _, password = decoded.partition(":")
    # The client sends the key as user; DSS's doc says password: whichever half is filled.
    return user.strip() or password.strip()


def token_of(request: Request) -> str | None:
    """The API token the request carries (Basic either half, or Bearer), None without one."""
    header = request.headers.get("Authorization", "")
    if not header or len(header) > _MAX_HEADER:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        return _basic_token(value) or None
    return None


def _proxied(app: Codenv, actor: Actor, login: str, source: str) -> Actor:
    if not actor.is_admin:
        raise PermissionDenied(
            f"only an administrator's token may act as another user ({PROXY_USER_HEADER})",
            field=PROXY_USER_HEADER,
        )
    user = get_user(app, actor, login.strip())
    return load_actor(app, user.id, source=source)


def authenticate_dss(app: Codenv, request: Request) -> Actor:
    """The caller; AuthenticationFailed (401) without a valid token."""
    token = token_of(request)
    if token is None:
        raise AuthenticationFailed(REQUIRED)
    source = client_source(request)
    actor = authenticate_token(app, token, source=source)
    proxy = request.headers.get(PROXY_USER_HEADER, "")
    return _proxied(app, actor, proxy, source) if proxy.strip() else actor
