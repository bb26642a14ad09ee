"""The error responses every /api/v1 operation declares in the OpenAPI schema:
`{"error": {"code", "message", "field"}}` (and `line`, the requested-packages line at fault,
when there is one). The responses themselves are made in `codenv.http.errors`, one place for
the API and the console."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None
    line: int | None = None


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
    413: _declared("Request body over its size limit: the message names the limit"),
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
