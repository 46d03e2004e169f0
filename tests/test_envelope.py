"""The envelope's time formatting: RFC 3339 UTC with milliseconds, cached per second yet exact."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from gateway.timestamps import iso, iso_ts, now_iso
from tests.test_http_contract import RFC3339


def test_iso_matches_the_standard_library_across_seconds_and_zones() -> None:
    """Alternating instants (so the per-second cache is hit and missed) in many zones and eras."""
    rng = random.Random(7)
    base = datetime(2026, 2, 17, 10, 30, tzinfo=UTC)
    instants = [base + timedelta(milliseconds=rng.randrange(0, 3000)) for _ in range(500)]
    instants += [datetime.fromtimestamp(rng.uniform(-1e10, 4e10), UTC) for _ in range(500)]
    instants += [datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)]
    for dt in instants:
        zoned = dt.astimezone(timezone(timedelta(hours=rng.randint(-12, 14))))
        for value in (dt, zoned):
            assert iso(value) == dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_now_iso_is_rfc3339_utc_milliseconds() -> None:
    assert RFC3339.match(now_iso())


def test_iso_ts_writes_what_iso_of_a_datetime_writes() -> None:
    """Stored times are formatted without a datetime; the text must be the same, rounding included."""
    import random

    rng = random.Random(7)
    cases = [0.0, 946037535.6639994, 1_700_000_000.9995, 1_700_000_000.9999996, 2_000_000_000.0005]
    cases += [rng.uniform(0, 4e9) for _ in range(20_000)]
    for ts in cases:
        assert iso_ts(ts) == iso(datetime.fromtimestamp(ts, UTC)), ts
