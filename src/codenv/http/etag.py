"""Conditional GETs for what clients poll: a JSON answer carries an ETag (a hash of its body),
and a client that sends it back in If-None-Match while nothing changed gets a 304 with no
body. The console and the remote CLI poll envs and builds every few hundred milliseconds;
most of those answers are the same as the last one.

The tag is the hash of the bytes sent, so it is right whatever the route computed, per user
included (two users who see different bodies see different tags). The route still runs: what
a 304 saves is the transfer and the client's parsing, not the server's reads.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The JSON the console and API clients poll: the API, and the console's own JSON routes.
WATCHED_PREFIXES = ("/api/v1/",)
WATCHED_PATHS = frozenset({"/new-env/check"})
# Stored by the browser but always asked again (with If-None-Match); never by a shared cache.
CACHE_CONTROL = "private, no-cache"


def watched(path: str) -> bool:
    return path.startswith(WATCHED_PREFIXES) or path in WATCHED_PATHS


def body_tag(body: bytes) -> str:
    """A weak tag: equal bodies, equal tags (the hash is of the exact bytes)."""
    return 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def tag_matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110's weak comparison against each tag of the header, or `*`."""
    opaque = tag.removeprefix("W/")
    candidates = (candidate.strip() for candidate in if_none_match.split(","))
    return any(c == "*" or c.removeprefix("W/") == opaque for c in candidates)


class ETags:
    """ASGI middleware: tags successful JSON answers to GETs of watched paths, and answers
    304 when the client already holds that body. Other answers pass through untouched (and
    are not held in memory)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not watched(scope["path"]):
            await self.app(scope, receive, send)
            return
        await _TaggedAnswer(send, Headers(scope=scope).get("if-none-match", "")).run(
            self.app, scope, receive
        )


class _TaggedAnswer:
    """One request's answer: held until its body is complete, then tagged (or made a 304)."""

    def __init__(self, send: Send, if_none_match: str) -> None:
        self.send, self.if_none_match = send, if_none_match
        self.start: Message | None = None
        self.passing = False
        self.chunks: list[bytes] = []

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive) -> None:
        await app(scope, receive, self.capture)

    async def capture(self, message: Message) -> None:
        if self.passing:
            await self.send(message)
        elif message["type"] == "http.response.start":
            self._begin(message)
            if self.passing:
                await self.send(message)
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._finish()
        else:
            await self.send(message)

    def _begin(self, start: Message) -> None:
        headers = Headers(raw=start["headers"])
        json = headers.get("content-type", "").startswith("application/json")
        if start["status"] != 200 or not json or "etag" in headers:
            self.passing = True
        else:
            self.start = start

    async def _finish(self) -> None:
        assert self.start is not None
        body = b"".join(self.chunks)
        tag = body_tag(body)
        headers = MutableHeaders(raw=list(self.start["headers"]))
        headers["ETag"] = tag
        if "cache-control" not in headers:
            headers["Cache-Control"] = CACHE_CONTROL
        if self.if_none_match and tag_matches(self.if_none_match, tag):
            # A 304 carries no body, so none of the headers that describe one.
            del headers["content-type"]
            del headers["content-length"]
            start = {**self.start, "status": 304, "headers": headers.raw}
            await self.send(start)
            await self.send({"type": "http.response.body", "body": b""})
            return
        await self.send({**self.start, "headers": headers.raw})
        await self.send({"type": "http.response.body", "body": body})
