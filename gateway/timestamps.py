"""Timestamps as the API writes them: RFC 3339 UTC with milliseconds (``2026-02-17T10:30:00.123Z``).

Every response, frame, event and stored row carries one, so the text of the
current second is formatted once and reused until the second changes.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

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


_ts_second: tuple[int, str] = (-1, "")


def iso_ts(ts: float) -> str:
    """A POSIX timestamp as ``iso(datetime.fromtimestamp(ts, UTC))`` writes it (rounded to the
    microsecond first, as datetime does), without making a datetime: stored times on hot paths."""
    global _ts_second
    frac, whole = math.modf(ts)  # as datetime.fromtimestamp rounds: the fraction alone
    us = round(frac * 1e6)
    second = int(whole)
    if us >= 1_000_000:
        second, us = second + 1, us - 1_000_000
    elif us < 0:
        second, us = second - 1, us + 1_000_000
    cached = _ts_second
    if cached[0] != second:
        cached = _ts_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{us // 1000:03d}Z"


def iso_ts_or_none(ts: float | None) -> str | None:
    """:func:`iso_ts`, with None for a time that has not happened (yet)."""
    return None if ts is None else iso_ts(ts)
