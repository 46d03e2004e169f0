"""What two nodes share: idempotency keys as claim rows in the store (gateway/idempotency.py) — a
concurrent repeat on another node waits for the first call and replays it, a failed call frees the
key, a dead holder's claim is taken over; on PostgreSQL, as a cluster runs it — and rate limits per
key, counted together over the bus (gateway/cluster/ratelimits.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.idempotency import IdempotencyKeys
from gateway.store import Store
from tests.support.errors import assert_error
from tests.support.gateway import Gateway
from tests.support.nodes import start_nodes
from tests.support.poll import until


def polls(store: Store) -> list[int]:
    """Counts the store's idempotency reads: a waiting repeat is seen to look again and again."""
    seen = [0]
    read = store.get_idempotent

    async def counted(scope: str, key: str):  # type: ignore[no-untyped-def]
        seen[0] += 1
        return await read(scope, key)

    store.get_idempotent = counted  # type: ignore[method-assign]
    return seen


@pytest.fixture
async def stores(pg_database: str, tmp_path: Path) -> AsyncIterator[list[Store]]:
    opened = [await Store.open(tmp_path, pg_database) for _ in range(2)]
    yield opened
    for store in opened:
        await store.close()


async def test_a_concurrent_repeat_on_another_node_waits_for_the_first_and_replays_it(stores: list[Store]) -> None:
    one, two = (IdempotencyKeys(s, poll_s=0.01) for s in stores)
    release = asyncio.Event()
    calls: list[str] = []

    async def send(name: str) -> dict[str, str]:
        calls.append(name)
        await release.wait()
        return {"messageId": f"sent-by-{name}"}

    first = asyncio.create_task(one.run("acct:1", "k", "h", lambda: send("one")))
    await until(lambda: calls == ["one"])
    looked = polls(stores[1])
    repeat = asyncio.create_task(two.run("acct:1", "k", "h", lambda: send("two")))
    await until(lambda: looked[0] >= 3)  # the repeat found the claim and keeps looking: it waits
    assert not repeat.done() and calls == ["one"]
    release.set()
    assert await first == ({"messageId": "sent-by-one"}, False)
    assert await repeat == ({"messageId": "sent-by-one"}, True)
    assert calls == ["one"]
    with pytest.raises(Exception, match="different request"):
        await two.run("acct:1", "k", "other-body", lambda: send("three"))


async def test_a_failed_first_call_frees_the_key_for_a_repeat_anywhere(stores: list[Store]) -> None:
    one, two = (IdempotencyKeys(s, poll_s=0.01) for s in stores)

    async def fails() -> dict[str, str]:
        raise RuntimeError("send failed")

    with pytest.raises(RuntimeError):
        await one.run("acct:1", "k2", "h", fails)

    async def works() -> dict[str, str]:
        return {"messageId": "second"}

    assert await two.run("acct:1", "k2", "h", works) == ({"messageId": "second"}, False)


async def test_a_dead_holders_claim_is_taken_over_once_stale(stores: list[Store]) -> None:
    now = [1000.0]
    one = IdempotencyKeys(stores[0], clock=lambda: now[0], poll_s=0.01, claim_s=60)
    two = IdempotencyKeys(stores[1], clock=lambda: now[0], poll_s=0.01, claim_s=60)
    hang = asyncio.Event()

    async def never() -> dict[str, str]:
        await hang.wait()
        return {}

    dead = asyncio.create_task(one.run("acct:1", "k3", "h", never))  # its node "dies" holding the claim
    await until(lambda: stores[0].get_idempotent("acct:1", "k3"))
    dead.cancel()
    await asyncio.gather(dead, return_exceptions=True)
    # A cancelled call releases its claim; put one back as a killed process would have left it.
    assert await stores[0].claim_idempotent("acct:1", "k3", "h", now[0], now[0] - 86400, now[0] - 60)

    async def works() -> dict[str, str]:
        return {"messageId": "taken-over"}

    looked = polls(stores[1])
    waiting = asyncio.create_task(two.run("acct:1", "k3", "h", works))
    await until(lambda: looked[0] >= 3)
    assert not waiting.done()  # the claim is fresh: wait
    now[0] += 61  # past claim_s: its holder is taken for dead
    assert await waiting == ({"messageId": "taken-over"}, False)


async def test_a_keys_rate_limit_holds_across_nodes(
    pg_database: str, nats_url: str, gateway_factory: Callable[..., Awaitable[Gateway]], tmp_path: Path
) -> None:
    """Each node reports its counts every half second; the others add them: 5 a minute is 5 a minute
    across both nodes once the reports are in (the overshoot bound is what a node admits in between)."""
    a, b = await start_nodes(gateway_factory, tmp_path, pg_database, nats_url, rate_limit_per_minute=5)
    for node in (a, b):  # one wall-clock moment mid-minute on both: no window rolls over during the test
        node.rt.limiter.clock = lambda: 1_800_000_030.0
    for _ in range(3):
        assert (await a.http.get("/devices")).status_code == 200
    await until(lambda: (b.rt.limiter._heard or {}).get("admin"), 10, "node a's report of the admin key on node b")
    assert [(await b.http.get("/devices")).status_code for _ in range(3)] == [200, 200, 429]
    await until(lambda: len((a.rt.limiter._heard or {}).get("admin", {})) == 1, 10, "node b's report on node a")
    assert_error(await a.http.get("/devices"), 429, "RATE_LIMITED")
