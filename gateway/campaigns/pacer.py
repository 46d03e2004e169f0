"""One pace per device, shared by every campaign sending from it.

Campaigns on one device take turns (a FIFO lock per device). A turn starts
when the device's previous send is a gap behind (the gap of the campaign that
made it), the campaign's own previous send is a gap behind, and neither the
device nor the campaign has sent ``perMinute`` messages in the last minute:
so two campaigns of 20 per minute on one device send 20 per minute between
them, never 40. Devices do not share anything: each has its own lane.

On-WhatsApp checks (``validate``) have a lane of their own per device
(``CHECKS``), paced by the same rules as the sends (gap, jitter, warm-up,
rolling minute) and shared in the same way: a device asks WhatsApp about at
most ``perMinute`` numbers a minute, never a burst, and its sends keep their
full pace. A cached answer takes no turn.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from gateway.campaigns.clock import Clock
from gateway.campaigns.pacing import Pace, Window, next_gap


@dataclass(slots=True)
class CampaignPace:
    """A campaign's own pacing state (in memory: after a restart the warm-up starts again, as it should)."""

    pace: Pace
    rng: random.Random = field(default_factory=random.Random)
    sent: int = 0
    next_at: float = 0.0
    window: Window = field(default_factory=Window)


SENDS = "sends"
CHECKS = "checks"


@dataclass(slots=True)
class _Lane:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = 0.0
    window: Window = field(default_factory=Window)


@dataclass(slots=True)
class Turn:
    ready: bool  # False: woken (paused, cancelled, stopping) before the turn came
    used: bool = False  # set by the caller when it sent (or asked WhatsApp) in this turn
    at: float | None = None  # when WhatsApp took it (the caller's clock reading right after the call)


class DevicePacer:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lanes: dict[tuple[str, str], _Lane] = {}

    def _lane(self, token: str, kind: str) -> _Lane:
        lane = self._lanes.get((token, kind))
        if lane is None:
            lane = self._lanes[(token, kind)] = _Lane()
        return lane

    def due(self, token: str, cp: CampaignPace, kind: str = SENDS) -> float:
        """When this campaign's next turn on ``token``'s ``kind`` lane may start, as things stand
        (``cp``: the campaign's pace state for that kind)."""
        lane = self._lane(token, kind)
        now = self.clock.now()
        limit = cp.pace.per_minute
        return max(lane.next_at, cp.next_at, lane.window.earliest(limit, now), cp.window.earliest(limit, now))

    @asynccontextmanager
    async def turn(self, token: str, cp: CampaignPace, wake: asyncio.Event, kind: str = SENDS) -> AsyncIterator[Turn]:
        """Wait for this campaign's turn on the device's ``kind`` lane (or for ``wake``); the block sends
        (or checks) at most once."""
        lane = self._lane(token, kind)
        async with lane.lock:
            ready = True
            while True:
                if wake.is_set():
                    ready = False
                    break
                at = self.due(token, cp, kind)
                now = self.clock.now()
                if at <= now:
                    break
                await self.clock.sleep(at - now, wake)
            turn = Turn(ready)
            yield turn
            if turn.used:
                # The gap counts from the moment WhatsApp took the message, not from when its record was
                # committed after it: what WhatsApp sees is then the gap itself, plus only the next send's
                # own way out.
                now = turn.at if turn.at is not None else self.clock.now()
                gap = next_gap(cp.pace, cp.sent, cp.rng)
                cp.sent += 1
                cp.next_at = now + gap
                lane.next_at = now + gap
                cp.window.record(now)
                lane.window.record(now)

    def forget(self, token: str) -> None:
        for kind in (SENDS, CHECKS):
            lane = self._lanes.get((token, kind))
            if lane is not None and not lane.lock.locked():
                del self._lanes[(token, kind)]
