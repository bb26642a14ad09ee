"""Who is calling, and from where: an API token (`Authorization: Bearer cdv_…`) or a browser
session; the client's address is the TCP peer's, or the one a trusted proxy forwards.

CSRF (double submit): a request authenticated by its session that changes anything must
repeat the session's CSRF token, in the `X-CSRF-Token` header (API) or the hidden `csrf` field
of a console form; token-authenticated clients need not. The login form, used before there is
a session, is protected the same way by a short-lived `codenv_login_csrf` cookie.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Mapping, Sequence

from fastapi import Request, Response

from codenv.domain.errors import AuthenticationFailed, PermissionDenied
from codenv.http.sessions import current_session
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.node_settings import Network, trusted_proxies
from codenv.services.sessions import ActiveSession
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


def codenv_of(request: Request) -> Codenv:
    app: Codenv = request.app.state.codenv
    return app


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in proxies)


def forwarded_client(peer: str, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str:
    """The client behind the trusted proxies: X-Forwarded-For read from its right end (what
    the nearest proxy appended) past every trusted hop. What a client wrote itself, left of
    that, is never believed."""
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    client = peer
    while hops and _trusted(client, proxies):
        hop = hops.pop()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
    return client


def client_source(request: Request) -> str:
    """The address a request comes from: its TCP peer, unless the peer is a proxy an
    administrator listed (`trustedProxies`), which says whom it forwards."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.getlist("X-Forwarded-For")
    if not forwarded:  # nothing to believe or not: the settings need not be read
        return peer
    proxies = trusted_proxies(codenv_of(request))
    if not proxies:
        return peer
    return forwarded_client(peer, forwarded, proxies)


def same_token(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def session_of(request: Request) -> ActiveSession | None:
    """The request's live browser session, with its user's rights as of now."""
    return current_session(codenv_of(request), request, client_source(request))


def _from_session(request: Request) -> Actor | None:
    session = session_of(request)
    if session is None:
        return None
    if request.method not in SAFE_METHODS and not same_token(
        request.headers.get(CSRF_HEADER, ""), session.csrf
    ):
        raise PermissionDenied("missing or wrong CSRF token (X-CSRF-Token header)", field="csrf")
    return session.actor


def authenticate(app: Codenv, request: Request) -> Actor:
    """The caller of an API route; AuthenticationFailed for an anonymous request."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return authenticate_token(app, header[7:], source=client_source(request))
    actor = _from_session(request)
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
