"""A clock for the campaigns' tests: time moves only when someone sleeps on it (no real waiting)."""

from __future__ import annotations

import asyncio

from tests.support.pace import next_turn


class JumpClock:
    """``sleep(s)`` moves time forward by ``s`` at once; every sleep is recorded."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        if wake is not None and wake.is_set():
            return
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await next_turn()
