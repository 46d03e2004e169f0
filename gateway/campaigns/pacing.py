"""Pacing rules of a campaign (CONTRACT §13), as pure functions of a clock reading.

- consecutive sends are ``60 / perMinute`` seconds apart, ± ``jitterPct``;
- a rolling-minute window caps what jitter could otherwise bunch up: never
  more than ``perMinute`` sends in any 60 s;
- warm-up: the first :data:`WARMUP_SENDS` sends of a campaign are spaced
  wider, from :data:`WARMUP_FACTOR` times the gap down to 1x, because a
  number that starts blasting at full speed is what WhatsApp's spam
  detection looks for;
- ``dailyCap``: at most that many sends per calendar day in the campaign's
  time zone (``quietHours.tz``, else UTC);
- ``quietHours``: nothing is sent from ``from`` to ``to`` (local time in
  ``tz``; a window may cross midnight).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

DEFAULT_PER_MINUTE = 20
MAX_PER_MINUTE = 60
DEFAULT_JITTER_PCT = 30
MAX_JITTER_PCT = 90
WARMUP_SENDS = 10
WARMUP_FACTOR = 3.0
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: int  # minutes after local midnight
    end: int
    tz: str

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


@dataclass(frozen=True, slots=True)
class Pace:
    per_minute: int = DEFAULT_PER_MINUTE
    jitter_pct: int = DEFAULT_JITTER_PCT
    daily_cap: int | None = None
    quiet: QuietHours | None = None

    @property
    def gap(self) -> float:
        return MINUTE / self.per_minute

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.quiet.tz if self.quiet else "UTC")

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"perMinute": self.per_minute, "jitterPct": self.jitter_pct}
        out["dailyCap"] = self.daily_cap
        out["quietHours"] = (
            {"from": _hhmm(self.quiet.start), "to": _hhmm(self.quiet.end), "tz": self.quiet.tz} if self.quiet else None
        )
        return out


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def next_gap(pace: Pace, sent_before: int, rng: random.Random) -> float:
    """Seconds from this send to the next one of the same campaign (warm-up and jitter included)."""
    warm = 1.0
    if sent_before < WARMUP_SENDS:
        warm = WARMUP_FACTOR - (WARMUP_FACTOR - 1.0) * sent_before / WARMUP_SENDS
    j = pace.jitter_pct / 100
    return pace.gap * warm * (1.0 + rng.uniform(-j, j))


class Window:
    """The send times of the last minute: when may the next one go without passing ``limit`` per minute."""

    def __init__(self) -> None:
        self.times: deque[float] = deque()

    def record(self, at: float) -> None:
        self.times.append(at)
        while len(self.times) > MAX_PER_MINUTE:
            self.times.popleft()

    def earliest(self, limit: int, now: float) -> float:
        while self.times and self.times[0] <= now - MINUTE:
            self.times.popleft()
        if len(self.times) < limit:
            return now
        return self.times[-limit] + MINUTE


def quiet_until(quiet: QuietHours | None, now: float) -> float | None:
    """When the quiet hours that ``now`` falls in end; None when ``now`` is not in them."""
    if quiet is None or quiet.start == quiet.end:
        return None
    local = datetime.fromtimestamp(now, quiet.zone())
    minute = local.hour * 60 + local.minute
    start, end = quiet.start, quiet.end
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    day = local.date() if (start < end or minute < end) else local.date() + timedelta(days=1)
    naive = datetime(day.year, day.month, day.day, end // 60, end % 60)
    return naive.replace(tzinfo=quiet.zone()).timestamp()


def day_bounds(pace: Pace, now: float) -> tuple[float, float]:
    """The start and end (unix seconds) of ``now``'s calendar day in the campaign's zone."""
    zone = pace.zone()
    local = datetime.fromtimestamp(now, zone)
    start = datetime(local.year, local.month, local.day, tzinfo=zone)
    nxt = start.date() + timedelta(days=1)
    return start.timestamp(), datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).timestamp()


def warmup_extra(sent_before: int, gaps: int) -> float:
    """How many mean gaps the warm-up adds to the next ``gaps`` gaps of a campaign that has made
    ``sent_before`` sends since it (re)started."""
    return sum(WARMUP_FACTOR - (WARMUP_FACTOR - 1.0) * i / WARMUP_SENDS - 1.0
               for i in range(sent_before, min(WARMUP_SENDS, sent_before + gaps)))  # fmt: skip


def eta(pace: Pace, remaining: int, now: float, sent_today: int, share: int = 1, sent_before: int = 0) -> float:
    """When ``remaining`` sends will be done, walking day by day through quiet hours and the daily cap.

    ``share``: campaigns taking turns on the same device (each gets about 1/share of its pace).
    ``sent_before``: sends since the campaign (re)started — the warm-up's wider gaps still ahead are
    counted (they are a minute or more of a small campaign). Jitter averages out: the mean gap is used.
    """
    if remaining <= 0:
        return now
    gap = pace.gap * max(1, share)
    t = _advance_active(pace.quiet, now, warmup_extra(sent_before, remaining - 1) * gap)
    cap_left = None if pace.daily_cap is None else max(0, pace.daily_cap - sent_today)
    for _ in range(3660):  # ten years of days, at most
        _, day_end = day_bounds(pace, t)
        active = _active_seconds(pace.quiet, t, day_end)
        fit = math.floor(active / gap) + (1 if active > 0 else 0)
        if cap_left is not None:
            fit = min(fit, cap_left)
        if remaining <= fit:
            return _advance_active(pace.quiet, t, (remaining - 1) * gap)
        remaining -= fit
        t = day_end
        cap_left = pace.daily_cap
    return t


def _active_seconds(quiet: QuietHours | None, start: float, end: float) -> float:
    """Seconds between ``start`` and ``end`` outside quiet hours (sampled per minute edge)."""
    if quiet is None:
        return end - start
    total, t = 0.0, start
    while t < end:
        until = quiet_until(quiet, t)
        if until is not None:
            t = until
            continue
        step = min(end, _next_quiet_start(quiet, t))
        total += step - t
        t = step
    return total


def _next_quiet_start(quiet: QuietHours, now: float) -> float:
    local = datetime.fromtimestamp(now, quiet.zone())
    candidate = datetime(local.year, local.month, local.day, quiet.start // 60, quiet.start % 60, tzinfo=quiet.zone())
    if candidate.timestamp() <= now:
        candidate = candidate + timedelta(days=1)
    return candidate.timestamp()


def _advance_active(quiet: QuietHours | None, start: float, seconds: float) -> float:
    """``start`` moved forward by ``seconds`` of sending time (quiet hours do not count)."""
    if quiet is None:
        return start + seconds
    t, left = start, seconds
    for _ in range(10_000):
        until = quiet_until(quiet, t)
        if until is not None:
            t = until
            continue
        stretch = _next_quiet_start(quiet, t) - t
        if left < stretch:
            return t + left
        left -= stretch
        t += stretch
    return t
