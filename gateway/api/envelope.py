"""The response envelope and the request id.

Success: ``{"success": true, "data", "message", "meta": {timestamp, requestId}}``;
error: ``{"success": false, "error": {code, message}, "meta"}``. The request id
comes from a well-formed ``X-Request-ID`` or is a fresh UUID4; it is echoed as a
header and put on every structlog line of the request (``gateway.api.gate`` does both).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from starlette.responses import Response

from gateway import ids
from gateway.api.errors import ApiError

request_id_var: ContextVar[str] = ContextVar("request_id", default="")  # set by the gate (gateway.api.gate)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def valid_request_id(value: str) -> bool:
    """≤ 64 characters of ``[A-Za-z0-9._-]`` (§2): such an incoming ``X-Request-ID`` is kept."""
    return _REQUEST_ID.match(value) is not None


# (second, its formatted text): one tuple, swapped whole, so a thread never reads a
# second with another second's text.
_now_second: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-02-17T10:30:00.123Z``.

    On every response and event: the formatted second is reused until it changes.
    """
    global _now_second
    now = time.time()
    second = int(now)
    cached = _now_second
    if cached[0] != second:
        cached = _now_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((now - second) * 1000):03d}Z"


new_request_id = ids.request_id  # a random (version 4) UUID string


_iso_second: tuple[float, str] = (-1.0, "")


def iso(dt: datetime) -> str:
    """``dt`` as RFC 3339 UTC with milliseconds (the second's text reused, as in :func:`now_iso`)."""
    global _iso_second
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    second = dt.timestamp() // 1
    cached = _iso_second
    if cached[0] != second:
        cached = _iso_second = (second, dt.isoformat(timespec="seconds")[:-6])
    return f"{cached[1]}.{dt.microsecond // 1000:03d}Z"


def _meta() -> dict[str, str]:
    return {"timestamp": now_iso(), "requestId": request_id_var.get() or new_request_id()}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # Response models (msgspec Structs) become plain data only when met; dicts go straight through.
        return orjson.dumps(content, default=msgspec.to_builtins)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        if headers:
            super().init_headers(headers)
        else:  # the usual case, without Starlette's general header assembly
            self.raw_headers = [(b"content-length", b"%d" % len(self.body)), (b"content-type", b"application/json")]


def ok(data: Any = None, message: str = "ok", status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "data": data, "message": message, "meta": _meta()}
    return JSONResponse(body, status_code=status)


def fail(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"success": False, "error": {"code": code, "message": message}, "meta": _meta()}
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(exc: ApiError) -> JSONResponse:
    return fail(exc.code, exc.message, exc.status, exc.headers)
