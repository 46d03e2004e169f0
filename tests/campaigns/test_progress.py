"""The ``campaign`` event throttle, on a fake clock and a fake timer: no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.campaigns.progress import Throttle


class FakeTimer:
    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None], FakeTimer.Handle]] = []

    class Handle:
        cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def __call__(self, delay: float, fn: Callable[[], None]) -> Any:
        handle = FakeTimer.Handle()
        self.pending.append((delay, fn, handle))
        return handle

    def fire_all(self) -> None:
        due, self.pending = self.pending, []
        for _, fn, handle in due:
            if not handle.cancelled:
                fn()


def test_at_most_one_event_a_second_and_the_last_counts_always_told() -> None:
    now = [100.0]
    told: list[tuple[str, float]] = []
    timer = FakeTimer()
    t = Throttle(lambda cid: told.append((cid, now[0])), lambda: now[0], timer)
    t.changed("a")  # the first goes out at once
    for dt in (0.1, 0.2, 0.5, 0.9):
        now[0] = 100.0 + dt
        t.changed("a")  # folded into one scheduled event
    assert told == [("a", 100.0)]
    assert len(timer.pending) == 1 and abs(timer.pending[0][0] - 0.9) < 1e-9  # due a second after the first
    now[0] = 101.0
    timer.fire_all()
    assert told == [("a", 100.0), ("a", 101.0)]
    t.changed("b")  # another campaign has its own second
    assert told[-1] == ("b", 101.0)


def test_a_status_change_folds_the_scheduled_event_in() -> None:
    now = [0.0]
    told: list[str] = []
    timer = FakeTimer()
    t = Throttle(told.append, lambda: now[0], timer)
    t.changed("a")
    now[0] = 0.5
    t.changed("a")
    t.told("a")  # a status event went out with the counts of the moment
    timer.fire_all()
    assert told == ["a"]
    now[0] = 1.0
    t.changed("a")  # within a second of the status event: scheduled, not sent
    assert told == ["a"] and len(timer.pending) == 1
