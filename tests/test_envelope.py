"""The envelope's time formatting: RFC 3339 UTC with milliseconds, cached per second yet exact."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from gateway.timestamps import iso, now_iso
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
