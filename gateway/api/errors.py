"""The error codes of the contract, as one exception type.

Every failure a client can see is an :class:`ApiError`; the envelope turns it
into ``{"success": false, "error": {"code", "message"}}`` with its status.
Anything else that escapes a route becomes ``INTERNAL_ERROR`` (500), logged
with its traceback and never shown to the client.
"""

from __future__ import annotations

STATUS: dict[str, int] = {
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "RATE_LIMITED": 429,
    "INVALID_REQUEST": 400,
    "PAYLOAD_TOO_LARGE": 413,
    "MISSING_TOKEN": 400,
    "INVALID_METHOD": 400,
    "INVALID_PHONE": 400,
    "INVALID_MESSAGE": 400,
    "INVALID_MEDIA": 400,
    "MEDIA_TOO_LARGE": 413,
    "MEDIA_FETCH_FAILED": 400,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "DEVICE_TAKEN": 409,
    "DEVICE_NOT_FOUND": 404,
    "DEVICE_NOT_CONNECTED": 500,
    "CONNECTION_FAILED": 500,
    "SEND_FAILED": 500,
    "VALIDATION_FAILED": 500,
    "INTERNAL_ERROR": 500,
    "NOT_READY": 503,
    # Hardening (issue 13): see API.md's error table.
    "QUOTA_EXCEEDED": 403,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "REQUEST_TIMEOUT": 408,
    "HEADERS_TOO_LARGE": 431,
    "TOO_MANY_CONNECTIONS": 503,
    "SHUTTING_DOWN": 503,
    # Cluster mode (CONTRACT §14): the device has no live owner right now, or runs on another node.
    "DEVICE_MOVING": 503,
}


class ApiError(Exception):
    """A contract error: ``code`` from :data:`STATUS`, a human message, extra headers."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS[code]
        self.message = message
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_REQUEST", message)


def device_not_found(token: str) -> ApiError:
    return ApiError("DEVICE_NOT_FOUND", f"no device for token {token}")


def device_moving(token: str, retry_after_s: object, where: str = "is being moved to another node") -> ApiError:
    """``503 DEVICE_MOVING`` with ``Retry-After`` (CONTRACT §14): the device is another node's, or no
    node's while it changes hands."""
    return ApiError("DEVICE_MOVING", f"device {token} {where}; try again shortly", {"Retry-After": str(retry_after_s)})
