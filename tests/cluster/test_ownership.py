"""Leases, fencing and the spread of devices over nodes, in-process on one PostgreSQL database
(CONTRACT §14): several :class:`Ownership` objects stand for several nodes; time on the database is
moved by expiring lease rows, time on a node by its own fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog

from gateway.cluster.leases import Leases, margin_s
from gateway.cluster.ownership import Ownership, share
from gateway.store import DeviceRow, Store
from gateway.store.messages import NewMessage

CHAT = "60198765432@s.whatsapp.net"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A listener that checks the invariant itself: no device is ever running on two nodes at once."""

    def __init__(self, node: str, running: dict[str, str]) -> None:
        self.node = node
        self.running = running
        self.started: list[str] = []
        self.stopped: list[str] = []

    async def on_acquired(self, token: str) -> None:
        assert token not in self.running, f"{token} started on {self.node} while running on {self.running.get(token)}"
        self.running[token] = self.node
        self.started.append(token)

    async def on_released(self, token: str) -> None:
        assert self.running.get(token) == self.node
        del self.running[token]
        self.stopped.append(token)


@pytest.fixture
async def stores(pg_migrated: str, tmp_path: Path) -> AsyncIterator[list[Store]]:
    opened = [await Store.open(tmp_path / str(i), pg_migrated) for i in range(4)]
    yield opened
    for s in opened:
        await s.close()


async def _devices(store: Store, n: int) -> list[str]:
    tokens = [f"dev{i:03d}" for i in range(n)]
    for t in tokens:
        await store.save_device(DeviceRow(token=t, status="connected", created_at="x", last_update="x"))
    return tokens


async def _expire(url: str, node: str | None = None) -> None:
    """Time passes on the database: leases (of ``node``, or all) and heartbeats run out."""
    conn = await asyncpg.connect(url)
    try:
        where = "" if node is None else " WHERE node = $1"
        args = () if node is None else (node,)
        await conn.execute(f"UPDATE device_leases SET expires_at = now() - interval '1 second'{where}", *args)
        await conn.execute(
            "UPDATE nodes SET heartbeat = now() - interval '1 hour'" + ("" if node is None else " WHERE id = $1"), *args
        )
    finally:
        await conn.close()


def test_share_splits_evenly_in_node_order() -> None:
    live = ["a", "b", "c"]
    assert [share(10, live, n) for n in live] == [4, 3, 3]
    assert [share(2, live, n) for n in live] == [1, 1, 0]
    assert share(5, ["a"], "b") == 2  # a node not yet in the list counts itself in


async def test_a_lease_is_held_once_and_every_acquisition_gets_a_higher_fence(
    stores: list[Store], pg_migrated: str
) -> None:
    a, b = Leases(stores[0], "a", 6), Leases(stores[1], "b", 6)
    assert await a.acquire(["x", "y"]) == ["x", "y"] or sorted(a.held) == ["x", "y"]
    assert await b.acquire(["x", "y", "z"]) == ["z"]  # held ones are not taken
    assert await a.renew() == []
    first = a.held["x"]
    await _expire(pg_migrated, "a")
    assert sorted(await a.renew()) == ["x", "y"]  # never renewed once expired: lost
    assert sorted(await b.acquire(["x", "y"])) == ["x", "y"]
    assert b.held["x"] > first
    for t in ("x", "y"):
        a.drop(t)
    assert await a.acquire(["x"]) == []
    await b.release(["x"])
    assert await a.acquire(["x"]) == ["x"] and a.held["x"] > b.held["y"] > first


async def test_the_holder_stops_trusting_a_lease_before_it_can_expire(stores: list[Store]) -> None:
    clock = Clock()
    leases = Leases(stores[0], "a", 10, clock)
    await leases.acquire(["x"])
    deadline = 1000.0 + 10 - margin_s(10)
    assert leases.next_deadline() == deadline < 1000.0 + 10
    clock.now = deadline - 0.01
    assert leases.expired() == []
    await leases.renew()  # sent at deadline - 0.01: trusted until then + ttl - margin
    clock.now = deadline + 1
    assert leases.expired() == []
    clock.now = deadline - 0.01 + 10 - margin_s(10)
    assert leases.expired() == ["x"]


async def test_a_stale_owners_writes_are_refused_and_logged(stores: list[Store], pg_migrated: str) -> None:
    old, new = stores[0], stores[1]
    [token] = await _devices(old, 1)
    a, b = Leases(old, "a", 6), Leases(new, "b", 6)
    old.fences, new.fences = a.fences, b.fences
    await a.acquire([token])
    row = DeviceRow(token=token, status="connected", created_at="x", last_update="x", pushname="from a")
    await old.save_device(row)
    assert (await new.get_device(token)).pushname == "from a"  # type: ignore[union-attr]
    await _expire(pg_migrated, "a")  # a froze past its lease; b takes the device
    await b.acquire([token])
    await new.save_device(DeviceRow(token=token, status="connected", created_at="x", last_update="x", pushname="b"))
    with structlog.testing.capture_logs() as logs:
        row.pushname = "stale"
        await old.save_device(row)
        assert await old.record_history(token, None, [("60123456789", "n")], "x", lambda new: []) == []
    assert (await new.get_device(token)).pushname == "b"  # type: ignore[union-attr]
    assert await new.count_contacts(token, None) == 0
    refused = [e for e in logs if e["event"] == "store.stale_write_refused"]
    assert len(refused) == 2 and refused[0]["token"] == token and refused[0]["node"] == "a"


async def test_a_job_of_sends_and_receipts_checks_each_devices_lease_once(
    stores: list[Store], pg_migrated: str
) -> None:
    """Sends and receipts queued together are one job: the device's lease is checked once for all of
    them (one refusal logged for a stale owner, nothing of its stored), and the owner's all land."""
    old, new = stores[0], stores[1]
    [token] = await _devices(old, 1)
    a, b = Leases(old, "a", 6), Leases(new, "b", 6)
    old.fences, new.fences = a.fences, b.fences
    await a.acquire([token])
    await _expire(pg_migrated, "a")
    await b.acquire([token])

    def queue(store: Store, prefix: str) -> list[tuple[Any, int]]:
        def sent(i: int) -> NewMessage:
            ts = 100.0 + i
            return NewMessage(token, f"{prefix}{i}", CHAT, "out", "text", "x", ts, "sent", (("sent", ts),), True)

        queued = [store.submit_sent(sent(i)) for i in range(5)]
        ids = [f"{prefix}{i}" for i in range(5)]
        queued.append(store.submit_receipt(token, ids, "delivered", 200.0, [], lambda c: (c.id, [])))
        return queued

    with structlog.testing.capture_logs() as logs:
        stale = queue(old, "A")
        assert len({id(f) for f, _ in stale}) == 1  # one job
        results = await stale[0][0]
    assert results == [False] * 5 + [([], [])]
    assert [e["event"] for e in logs].count("store.stale_write_refused") == 1
    fresh = queue(new, "B")
    results = await fresh[0][0]
    assert results[:5] == [True] * 5 and results[5][0] == [f"B{i}" for i in range(5)]
    assert [m.id for m in await new.list_messages(token, limit=20)] == [f"B{i}" for i in reversed(range(5))]


async def test_devices_spread_evenly_and_a_joining_node_gets_its_share_gently(
    stores: list[Store], pg_migrated: str
) -> None:
    await _devices(stores[0], 10)
    running: dict[str, str] = {}
    clock = Clock()
    nodes = [Ownership(stores[i], f"n{i}", 6, release_step=1, clock=clock) for i in range(4)]
    recorders = [Recorder(f"n{i}", running) for i in range(4)]
    for node, rec in zip(nodes, recorders, strict=True):
        node.listen(rec)
    first = nodes[:3]
    for node in first:
        await node.membership.beat()  # all three seen live before anyone takes its share
    for node in first:
        await node.round()
    assert sorted(len(n.leases.held) for n in first) == [3, 3, 4]
    assert len(running) == 10
    await nodes[3].round()  # joins: nobody gives up more than one device a round
    await nodes[0].round()
    assert len(nodes[0].leases.held) == 4  # devices acquired less than a TTL ago stay put
    clock.now += 6
    for _ in range(4):
        for node in nodes:
            before = len(node.leases.held)
            await node.round()
            assert before - len(node.leases.held) <= 1
    assert sorted(len(n.leases.held) for n in nodes) == [2, 2, 3, 3]
    assert nodes[0].owner_of(next(iter(nodes[3].leases.held))) == "n3"
    assert dict(nodes[0].nodes())["n3"] == sorted(nodes[3].leases.held)
    assert len(running) == 10


async def test_a_node_that_loses_its_leases_stops_its_devices_and_the_others_take_them(
    stores: list[Store], pg_migrated: str
) -> None:
    await _devices(stores[0], 6)
    # Two books: a is frozen here (its watchdog, which would have stopped them by now, is not running).
    a, b = Ownership(stores[0], "a", 6), Ownership(stores[1], "b", 6)
    ra, rb = Recorder("a", {}), Recorder("b", {})
    a.listen(ra)
    b.listen(rb)
    await a.round()  # alone: takes everything
    assert len(a.leases.held) == 6
    await b.round()
    await _expire(pg_migrated, "a")  # a was frozen past its lease
    await b.round()  # b alone in the live list now: takes all six
    assert len(b.leases.held) == 6 and sorted(rb.started) == sorted(ra.started)
    await a.round()  # a wakes: its renewal finds the leases gone, and it stops every device
    assert a.leases.held == {} and sorted(ra.stopped) == sorted(ra.started)


async def test_stop_hands_every_device_over(stores: list[Store]) -> None:
    await _devices(stores[0], 4)
    running: dict[str, str] = {}
    a, b = Ownership(stores[0], "a", 6), Ownership(stores[1], "b", 6)
    a.listen(Recorder("a", running))
    b.listen(Recorder("b", running))
    await a.start()
    await b.round()
    await a.round()  # b's share would move only once a has held them a TTL
    assert len(a.leases.held) == 4 and len(b.leases.held) == 0 and a.joined
    await a.stop()
    assert a.leases.held == {} and not a.joined
    await b.round()  # at once: a left the live list and gave its leases back
    assert len(b.leases.held) == 4 and set(running.values()) == {"b"}


async def test_the_watchdog_fences_on_the_nodes_own_clock(stores: list[Store]) -> None:
    await _devices(stores[0], 2)
    clock = Clock()
    running: dict[str, str] = {}
    a = Ownership(stores[0], "a", 6, clock=clock)
    rec = Recorder("a", running)
    a.listen(rec)
    await a.round()
    assert await a.check_fences() == []
    clock.now += 6 - margin_s(6)  # no renewal reached the database meanwhile
    assert sorted(await a.check_fences()) == sorted(rec.started) and running == {}
    assert a.owner_of(rec.started[0]) is None


async def test_a_rebalance_never_moves_a_device_being_paired(stores: list[Store]) -> None:
    tokens = await _devices(stores[0], 4)
    clock = Clock()
    a = Ownership(stores[0], "a", 6, pinned=lambda t: t != tokens[3], clock=clock)  # all but one are pairing
    b = Ownership(stores[1], "b", 6, clock=clock)
    await a.round()
    assert len(a.leases.held) == 4
    await b.membership.beat()
    clock.now += 6
    for _ in range(3):
        await a.round()
        await b.round()
    assert sorted(a.leases.held) == tokens[:3] and list(b.leases.held) == [tokens[3]]
