"""The response envelope and the request id.

Success: ``{"success": true, "data", "message", "meta": {timestamp, requestId}}``;
error: ``{"success": false, "error": {code, message}, "meta"}``. The request id
comes from a well-formed ``X-Request-ID`` or is a fresh UUID4; it is echoed as a
header and put on every structlog line of the request (``gateway.api.gate`` does both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
from starlette.responses import Response

from gateway import ids
from gateway.api.errors import ApiError
from gateway.logs import request_id_var
from gateway.timestamps import now_iso

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def valid_request_id(value: str) -> bool:
    """≤ 64 characters of ``[A-Za-z0-9._-]`` (§2): such an incoming ``X-Request-ID`` is kept."""
    return _REQUEST_ID.match(value) is not None


new_request_id = ids.request_id  # a random (version 4) UUID string


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
