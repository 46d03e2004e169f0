"""``campaign`` events: at most one a second per campaign, plus one at every status change.

A change in the counts asks for an event; if the campaign's last one went out
less than :data:`INTERVAL_S` ago, one event is scheduled for when the second
is up (so the last counts are always told), and later asks in between ride
along with it. A status change goes out at once. The clock and the timer are
injected, so the throttle is tested without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

INTERVAL_S = 1.0

Timer = Callable[[float, Callable[[], None]], Any]  # (delay s, callback) → a handle with .cancel()


def _loop_timer(delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, fn)


class Throttle:
    """Calls ``emit(campaign_id)`` within the rate rule above."""

    def __init__(
        self,
        emit: Callable[[str], None],
        clock: Callable[[], float],
        timer: Timer = _loop_timer,
    ) -> None:
        self.emit = emit
        self.clock = clock
        self.timer = timer
        self._last: dict[str, float] = {}
        self._scheduled: dict[str, Any] = {}

    def changed(self, campaign_id: str) -> None:
        """The counts moved."""
        if campaign_id in self._scheduled:
            return
        now = self.clock()
        last = self._last.get(campaign_id)
        if last is None or now - last >= INTERVAL_S:
            self._fire(campaign_id)
            return
        self._scheduled[campaign_id] = self.timer(last + INTERVAL_S - now, lambda: self._due(campaign_id))

    def told(self, campaign_id: str) -> None:
        """A status change was just told (with the counts of the moment, in its own transaction): a
        scheduled counts event is folded into it, and the next one waits its second from now."""
        handle = self._scheduled.pop(campaign_id, None)
        if handle is not None:
            handle.cancel()
        self._last[campaign_id] = self.clock()

    def forget(self, campaign_id: str) -> None:
        handle = self._scheduled.pop(campaign_id, None)
        if handle is not None:
            handle.cancel()
        self._last.pop(campaign_id, None)

    def close(self) -> None:
        for handle in self._scheduled.values():
            handle.cancel()
        self._scheduled.clear()

    def _due(self, campaign_id: str) -> None:
        self._scheduled.pop(campaign_id, None)
        self._fire(campaign_id)

    def _fire(self, campaign_id: str) -> None:
        self._last[campaign_id] = self.clock()
        self.emit(campaign_id)
