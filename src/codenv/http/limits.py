"""The size limit of request bodies, and headers every response carries.

`BodyLimit` is an ASGI middleware, the outermost of the app's own: before authentication and
before anything parses a body, a body whose Content-Length is over its limit is answered 413
at once, and a body sent in chunks is counted as it arrives and refused the moment it passes
the limit (the route reading it stops there; its answer is replaced by the 413). The 413
names the limit and the setting that raises it, as JSON under /api/ and as a page elsewhere,
and closes the connection so the rest of the body is never read. Uploads have their own,
larger limit (`Settings.max_upload_bytes`); every other body has `Settings.max_body_bytes`.

Every response also says `X-Content-Type-Options: nosniff`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codenv.domain.limits import size_text
from codenv.http.errors import ShownError, json_error
from codenv.settings import LIMIT_SETTINGS, Settings

NOSNIFF = (b"x-content-type-options", b"nosniff")
CODE = "payload_too_large"
# The seed system's API (api/dss_compat): its clients read errors in that system's shape.
DSS_PREFIXES = ("/dip/publicapi/", "/public/api/")
# The routes whose bodies are uploaded files: (method, path).
UPLOAD_ROUTES = (
    ("PUT", re.compile(r"/api/v1/envs/[^/]+/resources/files/.*")),
    ("POST", re.compile(r"/envs/[^/]+/resources/upload")),
)
# Bundles with their wheels are larger than other uploads: their own limit.
BUNDLE_ROUTES = (("POST", re.compile(r"(/api/v1)?/bundles/import")),)


@dataclass(frozen=True)
class Limit:
    size: int
    setting: str  # the settings' field, for the variable that raises it
    field: str  # the error's field: "file" for uploads, "body" otherwise

    def refusal(self) -> ShownError:
        variable = LIMIT_SETTINGS[self.setting][0]
        what = "the upload" if self.field == "file" else "the request body"
        message = f"{what} is larger than the limit of {size_text(self.size)} ({variable})"
        return ShownError(413, CODE, message, self.field)


def _matches(routes: tuple[tuple[str, re.Pattern[str]], ...], method: str, path: str) -> bool:
    return any(method == verb and pattern.fullmatch(path) for verb, pattern in routes)


def limit_for(settings: Settings, method: str, path: str) -> Limit:
    if _matches(BUNDLE_ROUTES, method, path):
        return Limit(settings.max_bundle_bytes, "max_bundle_bytes", "file")
    if _matches(UPLOAD_ROUTES, method, path):
        return Limit(settings.max_upload_bytes, "max_upload_bytes", "file")
    return Limit(settings.max_body_bytes, "max_body_bytes", "body")


class BodyTooLarge(Exception):
    """Raised to the route reading a body past its limit: it must stop reading."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


def _with_nosniff(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == NOSNIFF[0] for name, _ in headers):
                headers.append(NOSNIFF)
            message = {**message, "headers": headers}
        await send(message)

    return sending


@dataclass
class _Body:
    """One request's body as it arrives: bytes so far, and whether the answer started."""

    limit: int
    received: int = 0
    too_large: bool = False
    answering: bool = False


class BodyLimit:
    def __init__(
        self, app: ASGIApp, settings: Settings, page: Callable[[ShownError], Response]
    ) -> None:
        self.app, self.settings, self.page = app, settings, page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_nosniff(send)
        limit = limit_for(self.settings, scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit.size:
            await self._refuse(scope, send, limit)
            return
        body = _Body(limit.size)
        try:
            await self.app(scope, _counting(receive, body), _unless_too_large(send, body))
        except Exception:
            if not body.too_large or body.answering:
                raise
        if body.too_large and not body.answering:
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: Limit) -> None:
        shown = limit.refusal()
        path = scope["path"]
        if path.startswith(DSS_PREFIXES):
            response = _dss_error(shown)
        else:
            response = json_error(shown) if path.startswith("/api/") else self.page(shown)
        response.headers["Connection"] = "close"  # do not read the rest of the body
        await response(scope, _never_receive, send)


def _dss_error(shown: ShownError) -> Response:
    from starlette.responses import JSONResponse

    body = {
        "errorType": "java.lang.IllegalArgumentException",
        "message": shown.message,
        "detailedMessage": shown.message,
        "code": CODE,
        "codenvCode": CODE,
        "field": shown.field,
    }
    return JSONResponse(body, status_code=shown.status)


def _counting(receive: Receive, body: _Body) -> Receive:
    async def receiving() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            body.received += len(message.get("body", b""))
            if body.received > body.limit:
                body.too_large = True
                raise BodyTooLarge
        return message

    return receiving


def _unless_too_large(send: Send, body: _Body) -> Send:
    """The route's answer, dropped when it answers a body it could not read whole."""

    async def sending(message: Message) -> None:
        if body.too_large and not body.answering:
            return
        if message["type"] == "http.response.start":
            body.answering = True
        await send(message)

    return sending


async def _never_receive() -> Message:
    return {"type": "http.disconnect"}
