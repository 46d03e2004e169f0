"""The contract's error envelope, asserted in one place."""

from __future__ import annotations

import re
from typing import Any

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def assert_error(r: Any, status: int, code: str) -> None:
    """``r`` is the envelope of error ``code`` with HTTP ``status``: a message, a timestamp, the request id."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False, r.text
    assert body["error"]["code"] == code and body["error"]["message"], r.text
    assert RFC3339.match(body["meta"]["timestamp"])
    assert body["meta"]["requestId"] == r.headers["x-request-id"]
