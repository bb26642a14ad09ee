"""Errors as the DSS client reads them (`utils.handle_http_exception`): for any status >= 400 it
raises `DataikuException("<errorType>: <detailedMessage>")`, so every failure under the DSS
prefixes answers this JSON, never codenv's `{"error": …}` (read by the client as
"Unknown error: No message").

    {"errorType": "...NotFoundException", "message": "...", "detailedMessage": "...",
     "code": "ERR_..." | null, "codenvCode": "not_found", "field": "name" | null}

codenv's 422 (invalid input) becomes DSS's 400; other statuses are kept.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from codenv.domain.errors import CodenvError, InvalidInput
from codenv.domain.secrets import mask_secrets

UNAUTHORIZED = "com.dataiku.dip.exceptions.UnauthorizedException"
NOT_FOUND = "com.dataiku.dip.server.controllers.NotFoundException"
ILLEGAL_ARGUMENT = "java.lang.IllegalArgumentException"
ILLEGAL_STATE = "java.lang.IllegalStateException"
INTERNAL = "com.dataiku.dip.exceptions.DSSInternalErrorException"
# DSS's code for what codenv does not have (R, conda, automation versions, images...).
UNSUPPORTED_CODE = "ERR_CODEENV_UNSUPPORTED_OPERATION_FOR_ENV_TYPE"

_TYPES = {
    "authentication_failed": UNAUTHORIZED,
    "authentication_required": UNAUTHORIZED,
    "permission_denied": UNAUTHORIZED,
    "not_found": NOT_FOUND,
    "already_exists": ILLEGAL_ARGUMENT,
    "conflict": ILLEGAL_STATE,
    "build_cancelled": ILLEGAL_STATE,
    "internal_error": INTERNAL,
}
_STATUS_TYPES = {401: UNAUTHORIZED, 403: UNAUTHORIZED, 404: NOT_FOUND, 409: ILLEGAL_STATE}


class DssError(CodenvError):
    """A refusal that only this API makes, with DSS's `code` (`ERR_…`): a feature codenv does
    not have (`Unsupported`), or a request DSS's routes would refuse. Status 400 unless set."""

    code = "unsupported"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        dss_code: str | None = UNSUPPORTED_CODE,
        status: int = 400,
    ) -> None:
        super().__init__(message, field=field)
        self.dss_code = dss_code
        self.status = status


def dss_status(error: CodenvError) -> int:
    # DSS refuses bad arguments with 400; codenv's 422 means the same.
    return 400 if isinstance(error, InvalidInput) or error.status == 422 else error.status


def error_type(code: str, status: int) -> str:
    """The Java class name DSS would report: what the client prints before the message."""
    if code in _TYPES:
        return _TYPES[code]
    if status >= 500:
        return INTERNAL
    return _STATUS_TYPES.get(status, ILLEGAL_ARGUMENT)


def body_of(
    status: int,
    codenv_code: str,
    message: str,
    *,
    field: str | None = None,
    dss_code: str | None = None,
) -> dict[str, Any]:
    text = mask_secrets(message)
    return {
        "errorType": error_type(codenv_code, status),
        "message": text,
        "detailedMessage": text,
        "code": dss_code,
        "codenvCode": codenv_code,
        "field": field,
    }


def with_dss_code(error: CodenvError, dss_code: str) -> CodenvError:
    """`error` reported with DSS's `code` (`ERR_CODEENV_MISSING_ENV`…): a route re-raises a
    service's error with it, `raise with_dss_code(error, "ERR_…") from None`."""
    error.dss_code = dss_code  # type: ignore[attr-defined]
    return error


def dss_error_body(error: CodenvError, dss_code: str | None = None) -> dict[str, Any]:
    """§1.5's JSON for a codenv error (its message masked); `dss_code` defaults to the one the
    error carries (`DssError`, `with_dss_code`)."""
    dss_code = dss_code or getattr(error, "dss_code", None)
    body = body_of(dss_status(error), error.code, error.message, field=error.field)
    body["code"] = dss_code
    if error.line is not None:
        body["line"] = error.line
    return body


def dss_response(
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def dss_error_response(error: CodenvError) -> JSONResponse:
    retry = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry)} if retry else None
    return dss_response(dss_status(error), dss_error_body(error), headers)
