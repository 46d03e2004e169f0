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


def test_counts_heard_from_other_nodes_count_here_too() -> None:
    """A cluster's nodes share their window counts (gateway.cluster.ratelimits): what another node
    admitted counts here, its previous window weighted like this node's own."""
    now = [600.0 + 30]  # half-way through a wall-clock minute
    limiter = RateLimiter(10, clock=lambda: now[0])
    limiter.heard("other", "k", 600.0, 8, 0)  # ignored: not sharing
    assert all(limiter.hit("k") == 0 for _ in range(10))
    shared = RateLimiter(10, clock=lambda: now[0])
    shared.share()
    shared.heard("other", "k", 600.0, 8, 0)
    assert [shared.hit("k") == 0 for _ in range(3)] == [True, True, False]
    assert shared.take_reports() == [("k", 600.0, 2.0, 0.0)] and shared.take_reports() == []
    now[0] = 660.0 + 30  # the next minute: the other node's 8 weigh half (4), this node's own 2 weigh 1
    assert [shared.hit("k") == 0 for _ in range(6)] == [True] * 5 + [False]
    shared.heard("other", "k", 540.0, 50, 0)  # two minutes old: no longer counts
    assert shared.hit("j") == 0
