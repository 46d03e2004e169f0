"""A campaign as the API sees it: pace and start time checked, the view with an honest ``etaAt``.

Statuses: ``scheduled → running ⇄ paused → completed | cancelled`` (CONTRACT
§13), plus ``failed`` with an ``error`` when the campaign cannot go on: its
device was logged out or deleted, or its media upload is gone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from gateway.api.errors import invalid
from gateway.campaigns.pacing import (
    DEFAULT_JITTER_PCT,
    DEFAULT_PER_MINUTE,
    MAX_JITTER_PCT,
    MAX_PER_MINUTE,
    Pace,
    QuietHours,
)
from gateway.store.campaigns import CampaignRow
from gateway.timestamps import iso_ts_or_none

STATUSES = ("scheduled", "running", "paused", "completed", "cancelled", "failed")
FINAL = ("completed", "cancelled", "failed")
RECIPIENT_STATUSES = ("pending", "sent", "delivered", "read", "failed", "skipped")
MAX_NAME = 200
MAX_DAILY_CAP = 100_000
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def _whole(value: Any, name: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise invalid(f"'{name}' must be a whole number from {lo} to {hi:,}")
    return value


def _minutes(value: Any, name: str) -> int:
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None:
        raise invalid(f"'{name}' must be a time of day as HH:MM (24 h), e.g. 22:00")
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_pace(raw: Any) -> Pace:
    """``pace`` of ``POST /campaigns``: INVALID_REQUEST naming the field that is wrong."""
    if raw is None:
        return Pace()
    if not isinstance(raw, dict):
        raise invalid("'pace' must be an object")
    per_minute = _whole(raw.get("perMinute", DEFAULT_PER_MINUTE), "pace.perMinute", 1, MAX_PER_MINUTE)
    jitter = _whole(raw.get("jitterPct", DEFAULT_JITTER_PCT), "pace.jitterPct", 0, MAX_JITTER_PCT)
    cap = raw.get("dailyCap")
    daily_cap = None if cap is None else _whole(cap, "pace.dailyCap", 1, MAX_DAILY_CAP)
    quiet = None
    q = raw.get("quietHours")
    if q is not None:
        if not isinstance(q, dict):
            raise invalid("'pace.quietHours' must be an object {from, to, tz}")
        tz = q.get("tz", "UTC")
        if not isinstance(tz, str) or len(tz) > 64:
            raise invalid("'pace.quietHours.tz' must be an IANA time zone, e.g. Asia/Kuala_Lumpur")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise invalid(f"'pace.quietHours.tz': unknown time zone {tz!r}") from exc
        start = _minutes(q.get("from"), "pace.quietHours.from")
        end = _minutes(q.get("to"), "pace.quietHours.to")
        if start == end:
            raise invalid("'pace.quietHours' from and to must differ")
        quiet = QuietHours(start, end, tz)
    return Pace(per_minute, jitter, daily_cap, quiet)


def pace_from_json(raw: str) -> Pace:
    d = orjson.loads(raw)
    return parse_pace(d)


def parse_start(raw: Any, now: float) -> float | None:
    """``startAt``: an RFC 3339 time with a zone, not in the past (a minute of clock skew is forgiven)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > 40:
        raise invalid("'startAt' must be an RFC 3339 time, e.g. 2026-02-17T10:30:00Z")
    try:
        dt = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError as exc:
        raise invalid("'startAt' must be an RFC 3339 time, e.g. 2026-02-17T10:30:00Z") from exc
    if dt.tzinfo is None:
        raise invalid("'startAt' needs a time zone (Z or +hh:mm)")
    at = dt.timestamp()
    if at < now - 60:
        raise invalid("'startAt' is in the past")
    return at


COUNTS = ("total", "pending", "sent", "delivered", "read", "failed", "skipped")


def _counts(row: CampaignRow) -> dict[str, int]:
    return {name: getattr(row, name) for name in COUNTS}


def view(row: CampaignRow, eta_at: float | None) -> dict[str, Any]:
    """``GET /campaigns/{id}``'s data."""
    return {
        "id": row.id,
        "token": row.token,
        "name": row.name,
        "status": row.status,
        "error": row.error,
        **_counts(row),
        "createdAt": iso_ts_or_none(row.created_at),
        "startAt": iso_ts_or_none(row.start_at),
        "startedAt": iso_ts_or_none(row.started_at),
        "finishedAt": iso_ts_or_none(row.finished_at),
        "etaAt": iso_ts_or_none(eta_at),
        "pace": orjson.loads(row.pace),
        "validate": row.validate,
        "message": orjson.loads(row.message),
    }


def event_data(row: CampaignRow) -> dict[str, Any]:
    """The ``campaign`` event's data (§13), plus the delivered/read counts and the error."""
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        **_counts(row),
        "error": row.error,
    }
