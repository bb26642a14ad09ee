"""Mount the DSS API on codenv's FastAPI app: each route module's router under both prefixes
clients use (`/dip/publicapi`, what `DSSClient` calls; `/public/api`, what DSS's REST doc
names), out of the OpenAPI schema, and every failure under those prefixes answered as DSS's
error JSON (`errors.py`) while the rest of the app keeps its own handlers.

Route modules are found by name (`ROUTE_MODULES`), each exposing `router` (no prefix); one
that does not exist yet is skipped.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import State
from starlette.exceptions import HTTPException

from codenv.api.dss_compat.errors import body_of, dss_error_response, dss_response
from codenv.domain.errors import CodenvError

logger = logging.getLogger("codenv.http")
ROUTE_MODULES = ("routes_auth", "routes_futures", "routes_code_envs", "routes_admin")
PREFIXES = ("/dip/publicapi", "/public/api")
Handler = Callable[[Request, Exception], Response | Awaitable[Response]]
_HTTP_CODES = {400: "bad_request", 401: "authentication_required", 404: "not_found"}


def under_dss(path: str) -> bool:
    """Whether `path` is one of the DSS API's (so its errors answer DSS's JSON)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PREFIXES)


def route_modules() -> list[Any]:
    """The route modules that exist; a missing one is skipped, any other import error raised."""
    found = []
    for name in ROUTE_MODULES:
        full = f"{__package__}.{name}"
        try:
            found.append(importlib.import_module(full))
        except ModuleNotFoundError as error:
            if error.name != full:
                raise
    return found


async def _codenv_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, CodenvError)
    return dss_error_response(error)


async def _validation_error(_request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
    return dss_response(400, body_of(400, "invalid_request", message, field=field))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    status, path = error.status_code, request.scope.get("path", "")
    if status == 404:
        message = f"no such DSS API call: {request.method} {path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {path}"
    else:
        message = str(error.detail)
    code = _HTTP_CODES.get(status, "method_not_allowed" if status == 405 else "http_error")
    headers = getattr(error, "headers", None)
    return dss_response(status, body_of(status, code, message), headers)


async def _unexpected(_request: Request, error: Exception) -> Response:
    logger.exception("unexpected error", exc_info=error)
    message = "internal error; the server log has details"
    return dss_response(500, body_of(500, "internal_error", message))


def _prefix_aware(original: Handler | None, dss: Handler) -> Handler:
    async def handle(request: Request, error: Exception) -> Response:
        if under_dss(request.scope.get("path", "")):
            chosen: Handler = dss
        elif original is not None:
            chosen = original
        else:
            raise error
        answer = chosen(request, error)
        return await answer if inspect.isawaitable(answer) else answer

    return handle


def install_dss_error_handlers(app: FastAPI) -> None:
    """Under the DSS prefixes, DSS's error JSON; elsewhere the handlers installed before."""
    handlers: dict[type[Exception], Handler] = {
        CodenvError: _codenv_error,
        RequestValidationError: _validation_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
    for kind, dss in handlers.items():
        original = app.exception_handlers.get(kind)
        app.add_exception_handler(kind, _prefix_aware(original, dss))


def dss_app(state: State) -> FastAPI:
    """The DSS API as an application of its own, mounted under each prefix: its routing gives
    an unknown path its 404 and a known path with another method its 405 before the console's
    catch-all page could match, and its handlers answer DSS's error JSON. It shares the main
    app's `state` (the Codenv context), bodies are read whatever their Content-Type (the
    client sends none), and it has no schema and no docs."""
    api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, strict_content_type=False)
    api.state = state
    install_dss_error_handlers(api)
    for module in route_modules():
        api.include_router(module.router, include_in_schema=False)
    return api


def mount_dss_api(app: FastAPI) -> None:
    """Mount the DSS API under both prefixes. Call after the app's own error handlers are
    installed (they are wrapped, so errors under the prefixes answer DSS's JSON even outside
    the mounted app) and before any catch-all route (the console's)."""
    install_dss_error_handlers(app)
    api = dss_app(app.state)
    for prefix in PREFIXES:
        app.mount(prefix, api)
