"""Which node runs which device: an even spread over the live nodes, moved gently, never twice at once.

Every ``interval_s`` (a third of the lease TTL, at most 2 s) each node, on its own:

1. beats (:mod:`gateway.cluster.membership`) and learns the live nodes;
2. renews its leases; a lease the database no longer has for it is *lost*: the device is stopped;
3. counts the registry's devices and works out its fair share — the devices split as evenly as
   possible over the live nodes in id order (the first ``n mod L`` nodes take one more);
4. holding more than its share (a node joined), releases the excess a few at a time (stop, then give
   the lease back); holding fewer, takes free leases (nobody's, or expired) up to its share, preferring
   the devices that hash highest for it so nodes starting together rarely reach for the same one.

A watchdog stops each device at its lease's self-fence deadline (:mod:`gateway.cluster.leases`), even
when the loop is stuck on an unreachable database. What starting and stopping a device means is up to
the listeners (:class:`OwnershipListener`): the device manager restores the device locally or stops its
connection; the bus's forwarder serves the device's subject while it is here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from gateway.cluster.leases import Clock, Leases
from gateway.cluster.membership import Membership
from gateway.store import Store

log = structlog.get_logger("gateway.cluster")

RELEASE_STEP = 5  # devices given up per round when a node joins: a gentle rebalance, not a stampede


class OwnershipListener(Protocol):
    """Told when this node starts or stops owning a device. ``on_released`` must stop everything the
    node does for the device (its WhatsApp connection above all) before it returns."""

    async def on_acquired(self, token: str) -> None: ...

    async def on_released(self, token: str) -> None: ...


def share(devices: int, live: Sequence[str], node: str) -> int:
    """``node``'s fair share of ``devices`` over ``live`` (sorted): the first ``devices mod L`` take one more."""
    if node not in live:
        live = sorted([*live, node])
    base, extra = divmod(devices, len(live))
    return base + (1 if live.index(node) < extra else 0)


def _affinity(node: str, token: str) -> bytes:
    return hashlib.blake2b(f"{node}\0{token}".encode(), digest_size=8).digest()


class Ownership:
    """This node's part of the cluster's device ownership (see the module's text)."""

    def __init__(
        self,
        store: Store,
        node: str,
        ttl_s: float,
        *,
        clock: Clock = time.monotonic,
        interval_s: float | None = None,
        release_step: int = RELEASE_STEP,
        pinned: Callable[[str], bool] = lambda token: False,
    ) -> None:
        self.store = store
        self.node = node
        self.ttl_s = ttl_s
        self.clock = clock
        self.interval_s = interval_s if interval_s is not None else min(ttl_s / 3, 2.0)
        self.release_step = release_step
        # Devices a rebalance must not move now (one being paired: its QR lives on this node).
        self.pinned = pinned
        self.leases = Leases(store, node, ttl_s, clock)
        self.membership = Membership(store, node, ttl_s)
        self.listeners: list[OwnershipListener] = []
        self.devices: dict[str, int | None] = {}  # the registry at the last round: token → account
        self.holders: dict[str, str] = {}  # unexpired leases at the last round: token → node
        self.last_round: float | None = None  # clock() of the last round that reached the database
        self._acquired_at: dict[str, float] = {}
        self._loop: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._deadlines = asyncio.Event()
        self._stopping = False

    def listen(self, listener: OwnershipListener) -> None:
        self.listeners.append(listener)

    # --- what the rest of the node asks -------------------------------------------------------

    def owns(self, token: str) -> bool:
        return self.leases.holds(token)

    def owner_of(self, token: str) -> str | None:
        """The node that runs ``token`` (this one's id if here); None when nobody holds a live lease."""
        if self.leases.holds(token):
            return self.node
        holder = self.holders.get(token)
        return holder if holder != self.node else None

    def account_of(self, token: str) -> tuple[bool, int | None]:
        """Whether ``token`` is a device of the cluster's registry, and its account."""
        return (token in self.devices, self.devices.get(token))

    @property
    def retry_after_s(self) -> int:
        """What a client told DEVICE_MOVING should wait: about one round, when a free device is taken."""
        return max(1, math.ceil(self.interval_s))

    @property
    def joined(self) -> bool:
        """The loop runs and its last round reached the database within one lease TTL."""
        return (
            self._loop is not None
            and not self._loop.done()
            and self.last_round is not None
            and self.clock() - self.last_round < self.ttl_s
        )

    def nodes(self) -> list[tuple[str, list[str]]]:
        """The live nodes and the devices each runs (as of the last round; this node's own, as of now)."""
        owned: dict[str, list[str]] = {n: [] for n in self.membership.live}
        owned.setdefault(self.node, [])
        for token, node in self.holders.items():
            if node != self.node:
                owned.setdefault(node, []).append(token)
        owned[self.node] = list(self.leases.held)
        return [(n, sorted(tokens)) for n, tokens in sorted(owned.items())]

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join: the first round runs now (its errors stop start-up), then the loop and the watchdog."""
        await self.round()
        self._loop = asyncio.create_task(self._run(), name="cluster-ownership")
        self._watch = asyncio.create_task(self._watchdog(), name="cluster-fences")

    async def stop(self) -> None:
        """Hand every device over: stop them, give the leases back, leave (SIGTERM: the others take them
        at their next round instead of after the TTL)."""
        self._stopping = True
        for task in (self._loop, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        tokens = list(self.leases.held)
        await asyncio.gather(*(self._tell_released(t) for t in tokens))
        try:
            await self.leases.release(tokens)
            await self.membership.leave()
        except Exception as exc:  # the database is away: the leases run out by themselves
            for t in tokens:
                self.leases.drop(t)
            log.warning("cluster.leave_failed", node=self.node, error=str(exc))
        log.info("cluster.left", node=self.node, handed_over=len(tokens))

    async def claim(self, token: str) -> bool:
        """Take ``token``'s lease now (a device created on this node); True if this node runs it."""
        for t in await self.leases.acquire([token]):
            await self._gain(t)
        self._deadlines.set()
        return self.leases.holds(token)

    async def forget(self, token: str) -> None:
        """The device was deleted: its lease goes (its listeners are told it left)."""
        if self.leases.holds(token):
            await self._tell_released(token)
            await self.leases.release([token])
        self.devices.pop(token, None)
        self.holders.pop(token, None)

    # --- one round -----------------------------------------------------------------------------------

    async def round(self) -> None:
        """Beat, renew, then move towards this node's fair share (see the module's text)."""
        began = self.clock()
        before = set(self.membership.live)
        live = await self.membership.beat()
        for token in await self.leases.renew():
            log.warning("cluster.lease_lost", node=self.node, token=token)
            await self._lose(token)
        self._deadlines.set()
        timeout = self.leases.timeout_s
        self.devices = await self.store.device_owners(timeout)
        self.holders = await self.store.live_leases(timeout)
        self.last_round = began
        gone = before - set(live) - {self.node}
        if gone:  # their webhook claims go back to the queue now rather than when the claims run out
            released = await self.store.release_claims_of(sorted(gone), timeout)
            log.warning("cluster.nodes_gone", node=self.node, gone=sorted(gone), claims_released=released)
        mine = [t for t in self.leases.held]
        for token in mine:  # a lease whose device was deleted (by another node, or before its row was written)
            if token not in self.devices and began - self._acquired_at.get(token, began) > self.ttl_s:
                await self._let_go(token)
        # Devices just created here are leased before their row is written: counted, so never given away as excess.
        quota = share(len(set(self.devices) | set(self.leases.held)), live, self.node)
        held = len(self.leases.held)
        if held > quota:
            # Never one being paired, nor one that arrived within a TTL (created here a moment ago, or just
            # moved: no ping-pong while the spread settles).
            settled = began - self.ttl_s
            movable = [
                t for t in self.leases.held if not self.pinned(t) and self._acquired_at.get(t, settled) <= settled
            ]
            excess = sorted(movable, key=lambda t: _affinity(self.node, t))[: held - quota]
            for token in excess[: self.release_step]:
                await self._let_go(token)
        elif held < quota:
            free = [t for t in self.devices if t not in self.holders and not self.leases.holds(t)]
            free.sort(key=lambda t: _affinity(self.node, t), reverse=True)
            for token in await self.leases.acquire(free[: quota - held]):
                await self._gain(token)
            self._deadlines.set()

    async def check_fences(self) -> list[str]:
        """Stop every device whose lease this node may no longer trust; the ones stopped."""
        expired = self.leases.expired()
        for token in expired:
            log.warning("cluster.lease_expired", node=self.node, token=token)
            await self._lose(token)
        return expired

    # --- transitions ---------------------------------------------------------------------------------

    async def _gain(self, token: str) -> None:
        self._acquired_at[token] = self.clock()
        self.holders[token] = self.node
        for listener in self.listeners:
            try:
                await listener.on_acquired(token)
            except Exception:
                log.exception("cluster.start_failed", node=self.node, token=token)
                await self._let_go(token)
                return
        log.info("cluster.device_acquired", node=self.node, token=token, fence=self.leases.held.get(token))

    async def _lose(self, token: str) -> None:
        """The lease is gone or untrusted: forget it first (no new write of ours passes), then stop."""
        self.leases.drop(token)
        self.holders.pop(token, None)
        await self._tell_released(token)

    async def _let_go(self, token: str) -> None:
        """Give a device away: stop it here, then release the lease."""
        await self._tell_released(token)
        self.holders.pop(token, None)
        try:
            await self.leases.release([token])
        except Exception as exc:
            self.leases.drop(token)  # it runs out by itself
            log.warning("cluster.release_failed", node=self.node, token=token, error=str(exc))
        log.info("cluster.device_released", node=self.node, token=token)

    async def _tell_released(self, token: str) -> None:
        self._acquired_at.pop(token, None)
        for listener in reversed(self.listeners):
            try:
                await listener.on_released(token)
            except Exception:
                log.exception("cluster.stop_failed", node=self.node, token=token)

    # --- tasks ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval_s)
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep trying; the watchdog fences meanwhile
                log.warning("cluster.round_failed", node=self.node, error=repr(exc))

    async def _watchdog(self) -> None:
        while not self._stopping:
            self._deadlines.clear()
            deadline = self.leases.next_deadline()
            wait = self.interval_s if deadline is None else max(0.0, deadline - self.clock())
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._deadlines.wait()
            await self.check_fences()
