"""The rolling-minute rate limiter, on an injected clock."""

from __future__ import annotations

from gateway.ratelimit import RateLimiter


class Clock:
    def __init__(self, t: float = 1_000_020.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_allows_up_to_the_limit_then_asks_to_wait() -> None:
    """The (n+1)th request in a minute is refused with a positive wait."""
    clock = Clock()
    rl = RateLimiter(5, clock=clock)
    assert [rl.hit("k") for _ in range(5)] == [0.0] * 5
    wait = rl.hit("k")
    assert 1 <= wait <= 60


def test_keys_are_independent() -> None:
    """One key's usage never limits another."""
    rl = RateLimiter(1, clock=Clock())
    assert rl.hit("a") == 0.0
    assert rl.hit("a") > 0
    assert rl.hit("b") == 0.0


def test_window_rolls_over() -> None:
    """Two minutes later the full allowance is back."""
    clock = Clock()
    rl = RateLimiter(3, clock=clock)
    for _ in range(3):
        rl.hit("k")
    assert rl.hit("k") > 0
    clock.t += 120
    assert rl.hit("k") == 0.0


def test_previous_window_still_counts_in_the_rolling_minute() -> None:
    """Just after a window boundary, the previous minute's requests still count."""
    clock = Clock(1_000_000 * 60 + 50.0)
    rl = RateLimiter(10, clock=clock)
    for _ in range(10):
        assert rl.hit("k") == 0.0
    clock.t += 15  # 5 s into the next window: ~92% of the previous one overlaps
    assert rl.hit("k") > 0


def test_zero_disables() -> None:
    """RATE_LIMIT_PER_MINUTE=0 never limits."""
    rl = RateLimiter(0, clock=Clock())
    assert all(rl.hit("k") == 0.0 for _ in range(1000))
