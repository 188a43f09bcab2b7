"""The one error type raised by services, and its mapping to HTTP status codes.

Every failure a user can cause is raised as ``AttestError(code, message, details)``; the API renders it as
``{"error": {"code", "message", "details"}}`` and the HTML views show ``message``.
"""

from __future__ import annotations

from typing import Any

# Error codes and the HTTP status each maps to.
STATUS_BY_CODE: dict[str, int] = {
    "invalid": 400,
    "not_authenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "throttled": 429,
    "separation_of_duties": 403,
    "budget_exceeded": 409,
    "invalid_state": 409,
    "server_error": 500,
}


class AttestError(Exception):
    """A failure with a stable machine code, a sentence for people, and optional structured details."""

    def __init__(self, code: str, message: str, details: Any = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        self.status = status or STATUS_BY_CODE.get(code, 400)

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class NotFound(AttestError):
    """The object does not exist or belongs to an organisation the user may not see (both answer 404)."""

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__("not_found", message)


class PermissionDenied(AttestError):
    """The user may see the object but not perform this action on it."""

    def __init__(self, message: str = "You do not have permission to do this.", details: Any = None) -> None:
        super().__init__("permission_denied", message, details)


class InvalidState(AttestError):
    """The object is not in a state that allows this transition."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__("invalid_state", message, details)


class ValidationFailed(AttestError):
    """Input was well-formed for transport but wrong for the domain; ``details`` maps field -> messages."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__("invalid", message, details)
