"""The server's access log: one line a request, on stderr (uvicorn's own runs at warning)."""

from __future__ import annotations

import logging
import sys
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOG = logging.getLogger("codenv.access")


class RequestLog:
    """One line a request on stderr, in the common log's spirit: source, method, path (never
    the query: it may hold a secret), protocol, status and time taken."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        if not ACCESS_LOG.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            ACCESS_LOG.addHandler(handler)
            ACCESS_LOG.setLevel(logging.INFO)
            ACCESS_LOG.propagate = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("-", 0)
            ACCESS_LOG.info(
                '%s "%s %s HTTP/%s" %d %.1fms',
                client[0],
                scope["method"],
                scope["path"],
                scope.get("http_version", "1.1"),
                status,
                (time.perf_counter() - started) * 1000,
            )
