"""One place turns every error into `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from codenv.domain.errors import CodenvError
from codenv.domain.secrets import mask_secrets


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None


class ErrorBody(BaseModel):
    """What every error response is (declared in the OpenAPI schema for every operation)."""

    error: ErrorDetail


def _declared(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# The errors any /api/v1 operation may answer, declared once for all of them (the routers are
# included with these); a route adds its own (POST /session: 429).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _declared("Malformed request (a body that is not JSON)"),
    401: _declared("Authentication required or failed"),
    403: _declared("Permission denied, or missing CSRF token"),
    404: _declared("Not found (or not visible to the caller)"),
    409: _declared("Conflict with the current state (exists already, build running)"),
    422: _declared("Invalid request: `field` names the offending field"),
}
# The same for a route whose success is not JSON (its response_class would type its errors too).
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": declared["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for status, declared in ERROR_RESPONSES.items()
}
TOO_MANY_ATTEMPTS: dict[int | str, dict[str, Any]] = {
    429: _declared("Too many failed logins: retry after `Retry-After` seconds"),
}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": mask_secrets(message), "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _codenv_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CodenvError)
    retry = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry)} if retry else None
    return error_response(error.status, error.code, error.message, error.field, headers)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
    return error_response(422, "invalid_request", message, field)


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    codes = {
        400: "bad_request",
        401: "authentication_required",
        403: "permission_denied",
        404: "not_found",
        405: "method_not_allowed",
    }
    return error_response(
        error.status_code,
        codes.get(error.status_code, "http_error"),
        str(error.detail),
        headers=getattr(error, "headers", None),
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CodenvError, _codenv_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
