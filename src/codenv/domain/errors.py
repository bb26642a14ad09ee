"""The one error hierarchy. Adapters translate it in one place each (CLI catch, API handler)."""

from __future__ import annotations


class CodenvError(Exception):
    """Base of every error a user can be shown. `code` is stable; `status` is the HTTP status."""

    code = "error"
    status = 400
    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "field": self.field}


class InvalidSpec(CodenvError):
    code = "invalid_spec"
    status = 422
    exit_code = 2


class NotFound(CodenvError):
    code = "not_found"
    status = 404
    exit_code = 3


class AlreadyExists(CodenvError):
    code = "already_exists"
    status = 409
    exit_code = 2


class PermissionDenied(CodenvError):
    code = "permission_denied"
    status = 403
    exit_code = 5


class Conflict(CodenvError):
    code = "conflict"
    status = 409
    exit_code = 5


class BuildFailed(CodenvError):
    code = "build_failed"
    status = 422
    exit_code = 4


class UnsupportedInterpreter(CodenvError):
    code = "unsupported_interpreter"
    status = 422
    exit_code = 2


class AuthenticationFailed(CodenvError):
    """Bad credentials, always with the same message: never says whether a user exists."""

    code = "authentication_failed"
    status = 401
    exit_code = 5


class TooManyAttempts(CodenvError):
    """Failed logins from one source for one user name: wait before trying again."""

    code = "too_many_attempts"
    status = 429
    exit_code = 5

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
