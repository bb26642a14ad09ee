"""The one error hierarchy. Adapters translate it in one place each (CLI catch, API handler)."""

from __future__ import annotations


class CodenvError(Exception):
    """Base of every error a user can be shown. `code` is stable; `status` is the HTTP status."""

    code = "error"
    status = 400
    exit_code = 1

    def __init__(self, message: str, *, field: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # The 1-based line of the offending input (requested packages), for adapters that
        # show the error beside that line.
        self.line = line

    def to_dict(self) -> dict[str, str | int | None]:
        data: dict[str, str | int | None] = {
            "code": self.code,
            "message": self.message,
            "field": self.field,
        }
        if self.line is not None:
            data["line"] = self.line
        return data


class InvalidInput(CodenvError):
    """Input a caller sent that cannot be accepted (a password, an expiry, an upload...)."""

    code = "invalid_request"
    status = 422
    exit_code = 2


class InvalidSpec(InvalidInput):
    """A spec (python, sets, requested packages, options, init script) that cannot be built."""

    code = "invalid_spec"


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

    def __init__(
        self, message: str, *, field: str | None = None, returncode: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        # The failing command's exit code, when a command failed.
        self.returncode = returncode


class BuildCancelled(CodenvError):
    """A build stopped because someone cancelled it."""

    code = "build_cancelled"
    status = 409
    exit_code = 4


class Unavailable(CodenvError):
    """A service codenv needs did not answer: the server (remote CLI), a database, an index."""

    code = "unavailable"
    status = 503
    exit_code = 1


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


class RegistryError(CodenvError):
    """A container registry refused or failed an operation (credentials, a missing base
    image, an upload). The registry's own words are kept, secrets masked."""

    code = "registry_error"
    status = 502
    exit_code = 1
