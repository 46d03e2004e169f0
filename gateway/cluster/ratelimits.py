"""Rate limits per key across nodes (CONTRACT §14): each node counts locally and tells the others.

Every ``interval_s`` (0.5 s) a node publishes, on ``wa.<cluster>.rl``, the window counts of the keys
hit on it since its last report; every node adds the counts it heard from the others to its own when it
judges a request (:class:`gateway.ratelimit.RateLimiter`, on wall-clock minutes). No request waits on the
bus, and a node that hears nothing (the bus down) still enforces the limit on what it sees itself.

The bound on overshoot: a node judges with what the others reported up to ``interval_s`` plus one bus
hop ago, so within a rolling minute a key is admitted at most ``RATE_LIMIT_PER_MINUTE`` plus what the
other nodes admitted in that blind spot — at most ``(N − 1) × r × (interval_s + hop)`` for a key sending
``r`` requests per second to each of ``N`` nodes — and never more than ``N × RATE_LIMIT_PER_MINUTE``
(each node alone stops at the limit). With the bus down, each node enforces the limit alone.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import structlog

from gateway.cluster.bus import Bus, Handle, Headers
from gateway.ratelimit import RateLimiter

log = structlog.get_logger("gateway.cluster.ratelimits")

SUBJECT = "rl"  # after the bus's prefix
INTERVAL_S = 0.5
CHUNK = 2000  # keys per message (~100 bytes each: well under max_payload)


class SharedLimits:
    def __init__(self, bus: Bus, limiter: RateLimiter, interval_s: float = INTERVAL_S) -> None:
        self.bus = bus
        self.limiter = limiter
        self.interval_s = interval_s
        self._handle: Handle | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.limiter.share()
        self._handle = await self.bus.subscribe(self.bus.prefix + SUBJECT, self._incoming)
        self._task = asyncio.create_task(self._reporter(), name="rate-limit-reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._handle is not None:
            await self.bus.unsubscribe(self._handle)

    async def _reporter(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.report()
            except Exception:
                log.exception("ratelimits.report_failed")

    async def report(self) -> int:
        """Publish the counts of the keys hit here since the last report; how many keys."""
        reports = self.limiter.take_reports()
        for i in range(0, len(reports), CHUNK):
            body = orjson.dumps({"node": self.bus.origin, "counts": reports[i : i + CHUNK]})
            await self.bus.publish(self.bus.prefix + SUBJECT, body)
        return len(reports)

    def _incoming(self, data: bytes, headers: Headers | None) -> None:
        try:
            msg = orjson.loads(data)
            node = msg["node"]
            if node == self.bus.origin:
                return
            for key, start, current, previous in msg["counts"]:
                self.limiter.heard(node, str(key), float(start), float(current), float(previous))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ratelimits.bad_report", size=len(data))
