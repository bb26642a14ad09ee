"""The one place that turns errors into what a caller sees.

API: every error is `{"error": {"code", "message", "field"}}` (and `line`, the
requested-packages line at fault, when there is one) with its status (and `Retry-After` after
too many failed logins). Console: a refusal (401, 403) or an error outside a form is an error
page in words, or the login page when there is no session; the errors of a form are shown in
place, beside the form they came from. Messages are masked (credentials in URLs, API tokens)
in both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from codenv.domain.errors import AuthenticationFailed, CodenvError
from codenv.domain.secrets import mask_secrets
from codenv.http.one_hop import OneHopRoute

logger = logging.getLogger("codenv.http")
_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
}


class LoginRequired(Exception):
    """No valid session: the console answers with a redirect to the login page."""


@dataclass(frozen=True)
class ShownError:
    """An error as a caller is shown it."""

    status: int
    code: str
    message: str
    field: str | None
    # The 1-based line of the requested packages at fault, to show the error beside it.
    line: int | None = None
    retry_after: int | None = None

    @classmethod
    def of(cls, error: CodenvError) -> ShownError:
        return cls(
            status=error.status,
            code=error.code,
            message=mask_secrets(error.message),
            field=error.field,
            line=error.line,
            retry_after=getattr(error, "retry_after", None),
        )


def in_place(error: CodenvError) -> ShownError:
    """A form's error, to show beside the form; a refusal is raised again, for the error page.

    A missing env needs no rule of its own: drawing its page again raises NotFound."""
    if error.status in (401, 403):
        raise error
    return ShownError.of(error)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    line: int | None = None,
) -> JSONResponse:
    detail: dict[str, str | int | None] = {
        "code": code,
        "message": mask_secrets(message),
        "field": field,
    }
    if line is not None:
        detail["line"] = line
    body = {"error": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def json_error(shown: ShownError) -> JSONResponse:
    headers = {"Retry-After": str(shown.retry_after)} if shown.retry_after else None
    return error_response(shown.status, shown.code, shown.message, shown.field, headers, shown.line)


async def _codenv_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CodenvError)
    return json_error(ShownError.of(error))


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
    return error_response(422, "invalid_request", message, field)


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return error_response(
        error.status_code,
        _HTTP_CODES.get(error.status_code, "http_error"),
        str(error.detail),
        headers=getattr(error, "headers", None),
    )


async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=error)
    return error_response(500, "internal_error", "internal error; the server log has details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CodenvError, _codenv_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def console_route(
    error_page: Callable[[ShownError], Response], login_page: Callable[[Request], Response]
) -> type[APIRoute]:
    """The route class of console pages: errors are answered as pages, never as JSON."""

    class ConsoleRoute(OneHopRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except (LoginRequired, AuthenticationFailed):
                    return login_page(request)
                except CodenvError as error:
                    return error_page(ShownError.of(error))

            return handle

    return ConsoleRoute
