"""The HTTP side of the registry client: authentication, retries, and the words of failures.

`RegistryHttp.send` retries idempotent requests on connection errors, 5xx and 429 (backoff from
0.2 s, doubling); `restarting` runs a multi-request operation (a chunked upload, a download)
again from the start after a `Transient` failure.

Nothing is sent until the registry answers 401 with a challenge (`WWW-Authenticate`): `Basic`
makes every later request carry the endpoint's credentials; `Bearer realm=,service=,scope=`
makes the client fetch a token from the realm (with the credentials as Basic, or anonymously)
for the scopes the request needs plus those the challenge names, kept per scope until shortly
before it expires. Credentials and tokens go only to the registry's own origin (scheme, host,
port) and, for the credentials, to the token realm; never into a message, a log line or a URL.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from codenv.domain.errors import RegistryError
from codenv.domain.secrets import mask_secrets

if TYPE_CHECKING:
    from codenv.images.registry import RegistryEndpoint

# What is read of a token answer or an error body: both are small JSON documents.
TOKEN_MAX_BYTES = 1024 * 1024
ERROR_BODY_MAX_BYTES = 64 * 1024
_MESSAGE_MAX_CHARS = 300
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF_START = 0.2
_RETRY_AFTER_MAX = 5.0
# `key="quoted value"` or `key=token` pairs of a challenge (RFC 7235).
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


def registry_error(message: str, *, field: str = "registry") -> RegistryError:
    """The one way this package makes an error: masked, bounded."""
    return RegistryError(mask_secrets(message)[:2000], field=field)


class Transient(Exception):
    """A failure worth trying again (connection lost, 5xx, 429, an upload out of step)."""


def raise_transient(response: httpx.Response, doing: str, also: tuple[int, ...] = ()) -> None:
    if response.status_code in TRANSIENT_STATUSES or response.status_code in also:
        response.close()
        raise Transient(f"HTTP {response.status_code} {doing}")


def read_capped(response: httpx.Response, max_bytes: int) -> bytes | None:
    """The response's body, or None when it is larger than max_bytes (read no further)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)


def registry_words(response: httpx.Response) -> str:
    """What the registry said about a failure: its `errors[].message (code)`, else a bit of text."""
    try:
        body = read_capped(response, ERROR_BODY_MAX_BYTES) or b""
    except httpx.HTTPError:
        body = b""
    finally:
        response.close()
    words = ""
    try:
        errors = json.loads(body).get("errors") or []
        parts = [
            f"{error.get('message') or error.get('code')} ({error.get('code')})"
            for error in errors[:3]
            if isinstance(error, dict)
        ]
        words = "; ".join(parts)
    except (ValueError, AttributeError, TypeError):
        words = " ".join(body.decode("utf-8", "replace").split())
    words = words[:_MESSAGE_MAX_CHARS]
    return f"HTTP {response.status_code}" + (f": {words}" if words else "")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "basic", "bearer", or what else the registry asked for
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a `WWW-Authenticate` header, or None when there is none."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {
        match.group(1).lower(): (
            match.group(3) if match.group(3) is not None else re.sub(r"\\(.)", r"\1", match[2])
        )
        for match in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


@dataclass(frozen=True)
class _Token:
    value: str
    expires: float  # time.monotonic() after which it is not sent any more


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


class Authenticator:
    """The authorization state of one client: the scheme learnt, the tokens fetched."""

    def __init__(self, endpoint: RegistryEndpoint, client: httpx.Client, origin: httpx.URL) -> None:
        self._endpoint = endpoint
        self._client = client
        self._origin = _origin(origin)
        self._basic = False
        self._bearer: Challenge | None = None
        self._tokens: dict[tuple[str, ...], _Token] = {}

    def header(self, url: httpx.URL, scopes: Sequence[str]) -> str | None:
        """The `Authorization` value to send to url for scopes, or None (send none)."""
        if _origin(url) != self._origin:
            return None
        if self._bearer is not None:
            token = self._tokens.get(tuple(scopes))
            if token is None or token.expires <= time.monotonic():
                # The realm is known: fetch the token now rather than be refused first.
                params = {k: v for k, v in self._bearer.params.items() if k != "scope"}
                token = self._fetch_token(Challenge("bearer", params), scopes)
            return f"Bearer {token.value}"
        if self._basic and self._endpoint.username:
            return self._basic_header()
        return None

    def challenged(self, response: httpx.Response, scopes: Sequence[str], sent: str | None) -> None:
        """Learn from a 401 what to send next; raises when sending again cannot help."""
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            raise self.refused(scopes, sent)
        if challenge.scheme == "basic":
            if sent is not None and sent.startswith("Basic "):
                raise self.refused(scopes, sent)
            if not self._endpoint.username:
                raise self.refused(scopes, None)
            self._basic = True
            return
        if challenge.scheme == "bearer":
            self._bearer = challenge
            self._fetch_token(challenge, scopes)
            return
        raise registry_error(
            f"the registry {self._endpoint.host} asks for {challenge.scheme!r} authentication,"
            " which codenv does not support (Basic and Bearer tokens are)"
        )

    def refused(self, scopes: Sequence[str], sent: str | None) -> RegistryError:
        host, user = self._endpoint.host, self._endpoint.username
        if not user:
            return registry_error(
                f"the registry {host} needs credentials (none are configured for it)"
            )
        if sent is not None and sent.startswith("Bearer ") and scopes:
            return registry_error(
                f"the registry {host} refused user {user} access to {' '.join(scopes)}"
            )
        return registry_error(f"the registry {host} refused the credentials of user {user}")

    def _basic_header(self) -> str:
        pair = f"{self._endpoint.username}:{self._endpoint.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _realm(self, challenge: Challenge) -> httpx.URL:
        realm = challenge.params.get("realm", "")
        try:
            url = httpx.URL(realm)
        except httpx.InvalidURL:
            url = httpx.URL("")
        if url.scheme not in ("http", "https") or not url.host:
            raise registry_error(
                f"the registry {self._endpoint.host} sent a token realm that is not a URL"
            )
        if url.scheme == "http" and not self._endpoint.insecure:
            raise registry_error(
                f"the registry {self._endpoint.host} asks for credentials over plain http"
                f" ({url.host}); mark the registry insecure to allow that"
            )
        return url

    def _fetch_token(self, challenge: Challenge, scopes: Sequence[str]) -> _Token:
        wanted = list(scopes)
        for scope in challenge.params.get("scope", "").split():
            if scope not in wanted:
                wanted.append(scope)
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("scope", scope) for scope in wanted
        ]
        if "service" in challenge.params:
            params.insert(0, ("service", challenge.params["service"]))
        url = self._realm(challenge)
        url = url.copy_merge_params(params)
        headers = {"Authorization": self._basic_header()} if self._endpoint.username else {}
        try:
            response = self._client.send(
                self._client.build_request("GET", url, headers=headers), stream=True
            )
        except httpx.TransportError as error:
            raise registry_error(
                f"the token service of registry {self._endpoint.host} ({url.host}) did not"
                f" answer ({type(error).__name__}: {error})"
            ) from None
        if response.status_code in (401, 403):
            response.close()
            raise self.refused((), None)
        if response.status_code != 200:
            raise registry_error(
                f"the token service of registry {self._endpoint.host} failed:"
                f" {registry_words(response)}"
            )
        token = self._tokens[tuple(scopes)] = self._token_from(response)
        return token

    def _token_from(self, response: httpx.Response) -> _Token:
        try:
            body = read_capped(response, TOKEN_MAX_BYTES)
        finally:
            response.close()
        try:
            answer = json.loads(body or b"")
            value = answer.get("token") or answer.get("access_token")
            lifetime = float(answer.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0.0
        if not isinstance(value, str) or not value:
            raise registry_error(
                f"the token service of registry {self._endpoint.host} sent no token"
            )
        # Refetched a little before it expires rather than sent and refused.
        return _Token(value, time.monotonic() + max(lifetime * 0.9, 1.0))


class RegistryHttp:
    """One registry's connection pool, authentication and retries."""

    def __init__(
        self,
        endpoint: RegistryEndpoint,
        *,
        log: Callable[[str], None],
        timeout: float,
        retries: int,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.host = endpoint.host
        self.retries = max(retries, 0)
        self._log = log
        self._base = httpx.URL(f"{'http' if endpoint.insecure else 'https'}://{endpoint.host}")
        # No redirects unless asked (blob reads); httpx drops Authorization on another origin.
        self._client = httpx.Client(
            timeout=timeout, transport=transport, headers={"User-Agent": "codenv"}
        )
        self._auth = Authenticator(endpoint, self._client, self._base)

    def close(self) -> None:
        self._client.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        retry: bool = True,
        follow: bool = False,
    ) -> httpx.Response:
        """The response (streamed: close it), authenticated; with retry, transient failures
        retried. Without retry a connection error is a `Transient`."""
        attempts = self.retries + 1 if retry else 1
        for number in range(attempts):
            try:
                response = self._authenticated(method, url, scopes, content, headers, follow)
            except httpx.TransportError as error:
                reason = f"{type(error).__name__}: {error}".rstrip(": ")
                if not retry:
                    raise Transient(reason) from None
                if number + 1 >= attempts:
                    raise registry_error(
                        f"the registry {self.host} did not answer ({reason})"
                    ) from None
                self.pause(number, reason)
                continue
            if response.status_code in TRANSIENT_STATUSES and number + 1 < attempts:
                response.close()
                wait = response.headers.get("Retry-After", "")
                self.pause(number, f"HTTP {response.status_code}", wait)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def restarting(self, attempt: Callable[[], None]) -> None:
        """Run a multi-request operation, again from its start after a transient failure."""
        for number in range(self.retries + 1):
            try:
                attempt()
                return
            except Transient as failure:
                if number >= self.retries:
                    raise registry_error(
                        f"the registry {self.host} kept failing: {failure}"
                    ) from None
                self.pause(number, str(failure))

    def pause(self, number: int, reason: str, retry_after: str = "") -> None:
        delay = _BACKOFF_START * 2**number
        if retry_after.isdigit():
            delay = min(float(retry_after), _RETRY_AFTER_MAX)
        line = f"registry {self.host}: {reason}; retry {number + 1}/{self.retries} in {delay:.1f} s"
        self._log(mask_secrets(line)[:300])
        time.sleep(delay)

    def location(self, response: httpx.Response) -> str:
        """The absolute URL of the response's Location (relative or not), query kept."""
        location = response.headers.get("Location", "")
        if not location:
            raise registry_error(f"the registry {self.host} sent no upload location")
        return str(self._base.join(location))

    def failed(self, response: httpx.Response, doing: str) -> RegistryError:
        return registry_error(
            f"the registry {self.host} failed {doing}: {registry_words(response)}"
        )

    def _authenticated(
        self,
        method: str,
        url: str,
        scopes: Sequence[str],
        content: bytes | None,
        headers: dict[str, str] | None,
        follow: bool,
    ) -> httpx.Response:
        target = self._base.join(url)
        sent = self._auth.header(target, scopes)
        response = self._once(method, target, content, headers, sent, follow)
        if response.status_code != 401:
            return response
        response.close()
        self._auth.challenged(response, scopes, sent)
        sent = self._auth.header(target, scopes)
        response = self._once(method, target, content, headers, sent, follow)
        if response.status_code == 401:
            response.close()
            raise self._auth.refused(scopes, sent)
        return response

    def _once(
        self,
        method: str,
        url: httpx.URL,
        content: bytes | None,
        headers: dict[str, str] | None,
        authorization: str | None,
        follow: bool,
    ) -> httpx.Response:
        merged = dict(headers or {})
        if authorization is not None:
            merged["Authorization"] = authorization
        request = self._client.build_request(method, url, content=content, headers=merged)
        return self._client.send(request, stream=True, follow_redirects=follow)
