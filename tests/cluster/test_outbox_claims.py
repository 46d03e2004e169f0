"""The shared outbox in cluster mode (CONTRACT §14): dispatchers of several nodes claim rows from one
PostgreSQL outbox (``FOR UPDATE SKIP LOCKED``); each row goes out once, and a dead node's claims come back."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from gateway.net import Reply
from gateway.settings import Settings
from gateway.store import NewDelivery, Store
from gateway.webhooks.dispatcher import Dispatcher
from tests.support.pace import next_turn
from tests.support.poll import until


class Poster:
    """Counts every attempt by URL (one per row), shared by all nodes' dispatchers; answers 200 after a yield."""

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, guarded: bool, timeout_s: float
    ) -> Reply:
        self.posts[url] += 1
        await next_turn()
        return Reply(200, {})


@pytest.fixture
async def stores(pg_migrated: str, tmp_path: Path) -> AsyncIterator[list[Store]]:
    opened = [await Store.open(tmp_path / str(i), pg_migrated) for i in range(3)]
    yield opened
    for s in opened:
        await s.close()


async def _enqueue(store: Store, n: int) -> None:
    now = time.time()
    await store.enqueue(
        NewDelivery(f"msg_{i}", "message.received", "t", None, f"http://r.test/hook/{i}", b"{}", False, now)
        for i in range(n)
    )


async def test_three_nodes_deliver_every_row_once(stores: list[Store]) -> None:
    await _enqueue(stores[0], 300)
    poster = Poster()
    settings = Settings(webhook_concurrency=16, webhook_origin_concurrency=4)
    nodes = [Dispatcher(settings, s, http=poster, claim_as=f"n{i}", poll_s=0.05) for i, s in enumerate(stores)]
    for d in nodes:
        await d.start()
    try:
        await until(lambda: len(poster.posts) == 300, 30, "every delivery attempted")
        for d in nodes:
            await d.settle()
    finally:
        for d in nodes:
            await d.stop(grace_s=0.5)
    assert set(poster.posts.values()) == {1}
    assert sum(d.stats["delivered"] for d in nodes) == 300
    assert sum(1 for d in nodes if d.stats["delivered"]) >= 2  # shared, not one node doing it all
    counts, _ = await stores[0].outbox_stats()
    assert counts == {"delivered": 300}
    rows = await stores[0].db.fetchall("SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL")
    assert rows[0][0] == 0  # every attempt's result ended its claim


async def test_a_dead_nodes_claims_go_back_to_the_live_nodes(stores: list[Store]) -> None:
    await _enqueue(stores[0], 5)
    now = time.time()
    claimed = await stores[0].claim_deliveries("dead", now, now + 3600, 5)  # claimed, then the node died
    assert len(claimed) == 5
    assert await stores[1].claim_deliveries("live", now, now + 60, 5) == []  # nobody takes a held row
    assert await stores[1].release_claims_of(["starting"], 5) == 0  # only the gone node's claims
    assert await stores[1].release_claims_of(["dead"], 5) == 5
    assert len(await stores[1].claim_deliveries("live", now, now + 60, 5)) == 5
    # a claim also simply runs out
    later = now + 120
    assert len(await stores[2].claim_deliveries("other", later, later + 60, 5)) == 5


class CountingStore:
    """Wraps a store; counts claims and releases (the PostgreSQL round trips a pass costs)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.claims = 0
        self.records = 0
        self.released: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def claim_deliveries(self, holder: str, now: float, until_: float, limit: int) -> list[object]:
        self.claims += 1
        return list(await self._store.claim_deliveries(holder, now, until_, limit))

    async def record_attempts(self, results: list[object]) -> None:
        if results:
            self.records += 1
        await self._store.record_attempts(results)  # type: ignore[arg-type]

    async def release_claimed(self, holder: str, ids: list[int]) -> int:
        self.released += ids
        return await self._store.release_claimed(holder, ids)


async def test_rows_waiting_for_a_full_lane_stay_claimed_instead_of_churning(stores: list[Store]) -> None:
    """One receiver origin (4 at a time) and a concurrency of 16: the 12 rows that cannot start yet wait,
    still claimed, for the next free slot — a few claims for 200 rows, none handed back."""
    now = time.time()
    await stores[0].enqueue(
        NewDelivery(f"msg_{i}", "message.received", "t", None, "http://r.test/hook", b"{}", False, now)
        for i in range(200)
    )
    poster = Poster()
    counting = CountingStore(stores[0])
    settings = Settings(webhook_concurrency=16, webhook_origin_concurrency=4)
    d = Dispatcher(settings, counting, http=poster, claim_as="n0", poll_s=0.05)  # type: ignore[arg-type]
    await d.start()
    try:
        await until(lambda: poster.posts["http://r.test/hook"] == 200, 30, "every delivery attempted")
        await d.settle()
    finally:
        await d.stop(grace_s=0.5)
    assert poster.posts["http://r.test/hook"] == 200
    assert counting.released == []
    assert counting.claims <= 200 // (16 // 4) + 5, counting.claims  # a batch per quarter of the slots
    assert counting.records <= 200 // 8, counting.records  # results stored in batches, not one trip per pass


async def test_a_waiting_row_is_handed_back_before_its_claim_could_run_out(stores: list[Store]) -> None:
    """A row that has waited here so long that an attempt started now could outlive its claim goes back
    to the other nodes rather than risk two nodes sending it (and may be claimed afresh, by any node)."""
    now = time.time()
    await stores[0].enqueue(
        NewDelivery(f"msg_{i}", "message.received", "t", None, "http://slow.test/hook", b"{}", False, now)
        for i in range(6)
    )
    clock = [now]
    release = asyncio.Event()

    class Hanging(Poster):
        async def post(
            self, url: str, body: bytes, headers: Mapping[str, str], *, guarded: bool, timeout_s: float
        ) -> Reply:
            self.posts[url] += 1
            await release.wait()
            return Reply(200, {})

    settings = Settings(webhook_concurrency=8, webhook_origin_concurrency=2, webhook_timeout_ms=10_000)
    counting = CountingStore(stores[0])
    d = Dispatcher(settings, counting, http=Hanging(), claim_as="n0", clock=lambda: clock[0], poll_s=3600)  # type: ignore[arg-type]
    await d.deliver_due()  # claims the 6, starts 2; 4 wait
    held = await stores[0].db.fetchall("SELECT COUNT(*) FROM outbox WHERE claimed_by = 'n0'")
    assert held[0][0] == 6
    clock[0] += d.claim_s - d.timeout_s - 1  # an attempt started now could end after the claim
    assert counting.released == []
    await d.deliver_due()
    assert len(counting.released) == 4  # the waiting ones handed back; the 2 in flight stay claimed
    release.set()
    await d.stop(grace_s=1)
