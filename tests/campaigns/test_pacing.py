"""Pacing with a fake clock: gaps within the jitter bounds, never more than perMinute in a minute,
warm-up, one pace shared by the campaigns of a device, quiet hours, daily caps and the ETA."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.api.errors import ApiError
from gateway.campaigns.model import parse_pace, parse_start
from gateway.campaigns.pacer import CampaignPace, DevicePacer
from gateway.campaigns.pacing import (
    MINUTE,
    WARMUP_FACTOR,
    WARMUP_SENDS,
    Pace,
    QuietHours,
    eta,
    next_gap,
    quiet_until,
)
from tests.campaigns.fakes import JumpClock


async def send_times(pacer: DevicePacer, token: str, cp: CampaignPace, n: int, clock: JumpClock) -> list[float]:
    wake = asyncio.Event()
    times = []
    for _ in range(n):
        async with pacer.turn(token, cp, wake) as turn:
            assert turn.ready
            times.append(clock.now())
            turn.used = True
    return times


def max_per_window(times: list[float]) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - MINUTE:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_gaps_stay_within_the_jitter_bounds_after_the_warm_up() -> None:
    """perMinute 60, jitter 30 %: every gap after the warm-up is 1 s ± 30 %, and they do vary."""
    clock = JumpClock()
    pacer = DevicePacer(clock)
    cp = CampaignPace(Pace(per_minute=60, jitter_pct=30), rng=random.Random(7))
    times = await send_times(pacer, "t", cp, 600, clock)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    steady = gaps[WARMUP_SENDS:]
    assert all(0.7 - 1e-9 <= g <= 1.3 + 1e-9 or g > 1.3 for g in steady)
    # A gap longer than 1.3 s only comes from the per-minute window holding a send back.
    assert min(steady) >= 0.7 - 1e-9
    assert max(steady) - min(steady) > 0.3  # jittered, not a metronome
    assert max_per_window(times) <= 60


async def test_the_per_minute_count_is_never_exceeded_even_with_maximum_jitter() -> None:
    clock = JumpClock()
    pacer = DevicePacer(clock)
    cp = CampaignPace(Pace(per_minute=60, jitter_pct=90), rng=random.Random(3))
    times = await send_times(pacer, "t", cp, 1000, clock)
    assert max_per_window(times) <= 60


async def test_warm_up_spaces_the_first_sends_wider() -> None:
    rng = random.Random(1)
    pace = Pace(per_minute=60, jitter_pct=0)
    gaps = [next_gap(pace, i, rng) for i in range(WARMUP_SENDS + 2)]
    assert gaps[0] == pytest.approx(WARMUP_FACTOR)
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[WARMUP_SENDS] == pytest.approx(1.0)


async def test_campaigns_on_one_device_share_its_pace() -> None:
    """Two campaigns of 20/min on one device send 20/min between them; another device is not slowed."""
    clock = JumpClock()
    pacer = DevicePacer(clock)
    a = CampaignPace(Pace(per_minute=20, jitter_pct=30), rng=random.Random(1))
    b = CampaignPace(Pace(per_minute=20, jitter_pct=30), rng=random.Random(2))
    times: list[float] = []
    wake = asyncio.Event()

    async def run(cp: CampaignPace, n: int) -> None:
        for _ in range(n):
            async with pacer.turn("shared", cp, wake) as turn:
                times.append(clock.now())
                turn.used = True

    await asyncio.gather(run(a, 100), run(b, 100))
    assert max_per_window(times) <= 20
    ordered = sorted(times)
    gaps = [y - x for x, y in itertools.pairwise(ordered)]
    assert min(gaps[2 * WARMUP_SENDS :]) >= 3.0 * 0.7 - 1e-9
    # Another device's lane is free: its first turn is now.
    c = CampaignPace(Pace(per_minute=20))
    assert pacer.due("other", c) <= clock.now()


async def test_a_woken_turn_gives_up_without_sending() -> None:
    clock = JumpClock()
    pacer = DevicePacer(clock)
    cp = CampaignPace(Pace(per_minute=1))
    await send_times(pacer, "t", cp, 1, clock)
    wake = asyncio.Event()
    wake.set()
    async with pacer.turn("t", cp, wake) as turn:
        assert not turn.ready


def test_quiet_hours_across_midnight_in_a_time_zone() -> None:
    tz = "Asia/Kuala_Lumpur"
    quiet = QuietHours(22 * 60, 8 * 60, tz)
    zone = ZoneInfo(tz)
    at_23 = datetime(2026, 3, 1, 23, 0, tzinfo=zone).timestamp()
    at_07 = datetime(2026, 3, 2, 7, 0, tzinfo=zone).timestamp()
    at_12 = datetime(2026, 3, 2, 12, 0, tzinfo=zone).timestamp()
    end = datetime(2026, 3, 2, 8, 0, tzinfo=zone).timestamp()
    assert quiet_until(quiet, at_23) == end
    assert quiet_until(quiet, at_07) == end
    assert quiet_until(quiet, at_12) is None


def test_eta_counts_the_pace_the_daily_cap_and_quiet_hours() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    warm = WARMUP_SENDS  # past the warm-up
    assert eta(Pace(per_minute=60), 61, now, 0, sent_before=warm) == pytest.approx(now + 60)
    assert eta(Pace(per_minute=60), 61, now, 0, share=2, sent_before=warm) == pytest.approx(now + 120)
    capped = eta(Pace(per_minute=60, daily_cap=10), 25, now, 0)
    assert capped >= now + 2 * 86400 - 12 * 3600  # 10 today, 10 tomorrow, 5 the day after
    quiet = Pace(per_minute=60, quiet=QuietHours(13 * 60, 14 * 60, "UTC"))
    assert eta(quiet, 3601, now, 0, sent_before=warm) == pytest.approx(now + 3600 + 3600)  # an hour quiet


def test_eta_counts_the_warm_up_still_ahead() -> None:
    """A fresh campaign's first 10 gaps are 3x easing to 1.2x the gap: 21 gaps' time, not 10; halfway
    through the warm-up only its rest is counted; the mean of real paced runs agrees."""
    now = 1_800_000_000.0
    pace = Pace(per_minute=60, jitter_pct=30)
    assert eta(pace, 11, now, 0) == pytest.approx(now + 21)
    assert eta(pace, 6, now, 0, sent_before=5) == pytest.approx(now + sum(3 - 0.2 * i for i in range(5, 10)))
    assert eta(pace, 3, now, 0, sent_before=2) == pytest.approx(now + (3 - 0.4) + (3 - 0.6))
    rng = random.Random(5)
    runs = [sum(next_gap(pace, i, rng) for i in range(30)) for _ in range(2000)]
    assert sum(runs) / len(runs) == pytest.approx(eta(pace, 31, now, 0) - now, rel=0.01)


@pytest.mark.parametrize(
    ("pace", "field"),
    [
        ({"perMinute": 0}, "perMinute"),
        ({"perMinute": 1000}, "perMinute"),
        ({"jitterPct": 95}, "jitterPct"),
        ({"dailyCap": 0}, "dailyCap"),
        ({"quietHours": {"from": "25:00", "to": "08:00"}}, "quietHours.from"),
        ({"quietHours": {"from": "22:00", "to": "08:00", "tz": "Mars/Olympus"}}, "tz"),
    ],
)
def test_bad_paces_are_refused_naming_the_field(pace: dict[str, object], field: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_pace(pace)
    assert err.value.code == "INVALID_REQUEST" and field in err.value.message


def test_defaults_and_start_times() -> None:
    assert parse_pace(None) == Pace(per_minute=20, jitter_pct=30)
    with pytest.raises(ApiError, match="past"):
        parse_start("2020-01-01T00:00:00Z", 1_800_000_000.0)
    assert parse_start("2027-02-01T08:00:00+08:00", 1_800_000_000.0) is not None
