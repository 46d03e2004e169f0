"""The device leases this node holds, and when it must stop trusting each one.

A lease is a PostgreSQL row judged on the database's clock (:mod:`gateway.store.leases`): taken only
when free or expired, renewed only while unexpired, a new fencing token at every acquisition. The
holder cannot see the database's clock, so it fences itself on its own monotonic clock: a lease
renewed by a statement sent at ``t`` expires in the database no earlier than ``t + ttl`` (``now()``
there is read after the statement left), so the holder stops trusting it at ``t + ttl - margin`` and
stops the device's connection by then — before any other node may take it. A node frozen (SIGSTOP,
a long GC pause, a partition) wakes up past that point and stands down; whatever it still tries to
write is refused by the fence check of the unit of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from gateway.store import Store
from gateway.store.leases import Fences

Clock = Callable[[], float]


def margin_s(ttl_s: float) -> float:
    """How long before a lease's expiry its holder stops the device: time to close the connection."""
    return max(0.5, ttl_s * 0.2)


class Leases:
    """What this node holds (token → fencing token, shared with the store's fence checks) and until when
    it may trust each lease (on ``clock``, a monotonic clock: tests pass their own)."""

    def __init__(self, store: Store, node: str, ttl_s: float, clock: Clock = time.monotonic) -> None:
        self.store = store
        self.node = node
        self.ttl_s = ttl_s
        self.clock = clock
        self.margin_s = margin_s(ttl_s)
        self.timeout_s = max(0.5, ttl_s / 3)  # a statement slower than this is a failed renewal
        self.fences = Fences(node)
        self.valid_until: dict[str, float] = {}

    @property
    def held(self) -> dict[str, int]:
        return self.fences.held

    def holds(self, token: str) -> bool:
        return token in self.fences.held

    def _trust(self, token: str, fence: int, sent: float) -> None:
        self.fences.held[token] = fence
        self.valid_until[token] = sent + self.ttl_s - self.margin_s

    def drop(self, token: str) -> None:
        """Forget a lease locally (stopped trusting it, or released)."""
        self.fences.held.pop(token, None)
        self.valid_until.pop(token, None)

    async def acquire(self, tokens: Iterable[str]) -> list[str]:
        """Take the free ones of ``tokens``; the tokens taken."""
        wanted = [t for t in tokens if t not in self.fences.held]
        if not wanted:
            return []
        sent = self.clock()
        taken = await self.store.acquire_leases(self.node, wanted, self.ttl_s, self.timeout_s)
        for h in taken:
            self._trust(h.token, h.fence, sent)
        return [h.token for h in taken]

    async def renew(self) -> list[str]:
        """Extend every lease held; the ones the database no longer had for us (lost: stop them).

        A renewal that fails (database unreachable, too slow) raises: the leases stay as they were and
        :meth:`expired` stops them at their deadline."""
        held = dict(self.fences.held)
        if not held:
            return []
        sent = self.clock()
        renewed = await self.store.renew_leases(self.node, held, self.ttl_s, self.timeout_s)
        lost = []
        for token, fence in held.items():
            if token in renewed:
                if self.fences.held.get(token) == fence:
                    self.valid_until[token] = sent + self.ttl_s - self.margin_s
            else:
                lost.append(token)
        return lost

    def expired(self) -> list[str]:
        """The leases this node may no longer trust (past ``ttl - margin`` since their last renewal)."""
        now = self.clock()
        return [t for t, until in self.valid_until.items() if until <= now]

    def next_deadline(self) -> float | None:
        return min(self.valid_until.values(), default=None)

    async def release(self, tokens: Iterable[str]) -> None:
        """Give leases back (the devices are stopped already) so another node may take them at once."""
        given = {t: f for t in tokens if (f := self.fences.held.get(t)) is not None}
        for t in given:
            self.drop(t)
        await self.store.release_leases(self.node, given, self.timeout_s)
