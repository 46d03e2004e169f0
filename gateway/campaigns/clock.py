"""The campaigns' clock: what time it is and how to wait, in one injectable object.

Pacing, quiet hours, daily caps and the progress throttle all read time
through a :class:`Clock`. :class:`WallClock` is real time;
:class:`ScaledClock` runs ``scale`` times faster than real time
(``CAMPAIGN_CLOCK_SCALE``, for tests and benchmarks only: a 60-per-minute
campaign then sends one message per real second / scale). Tests drive a
fake clock of their own (``tests/campaigns``) and never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds (on this clock)."""
        ...

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Wait ``seconds`` of this clock, or less if ``wake`` is set meanwhile."""
        ...


class ScaledClock:
    """Real time, ``scale`` times faster after the moment it was made (scale 1: the wall clock)."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._origin = time.time()

    def now(self) -> float:
        real = time.time()
        return real if self.scale == 1 else self._origin + (real - self._origin) * self.scale

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        delay = max(0.0, seconds) / self.scale
        if wake is None:
            await asyncio.sleep(delay)
            return
        if wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)


def WallClock() -> ScaledClock:
    return ScaledClock(1.0)
