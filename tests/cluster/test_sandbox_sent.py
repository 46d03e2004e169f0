"""What the sandbox's simulated WhatsApp received, across the nodes of a cluster (CONTRACT §9 and §14): the
list is the simulated WhatsApp's, not a node's — a device that moves to another node keeps it, and
``GET /sandbox/devices/{token}/sent`` through any node shows everything the device sent, whichever node sent
it, in order. Two in-process nodes on one PostgreSQL database and one NATS server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from gateway.store.pg_schema import migrate
from gateway.store.sandbox_world import SandboxWorldStore
from tests.support.constants import TOKEN
from tests.support.gateway import Gateway
from tests.support.poll import until

PEER = "60171222333"


async def _send(gw: Gateway, text: str) -> str:
    r = await gw.post("/messages", {"token": TOKEN, "to": PEER, "text": text})
    assert r.status_code == 200, r.text
    message_id: str = r.json()["data"]["messageId"]
    return message_id


async def _sent(gw: Gateway) -> list[dict[str, Any]]:
    r = await gw.http.get(f"/sandbox/devices/{TOKEN}/sent")
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["data"]["messages"]
    return messages


async def test_a_device_keeps_what_it_sent_when_it_moves_and_any_node_shows_all_of_it(nodes: list[Gateway]) -> None:
    a, b = nodes
    await a.pair(TOKEN)
    ids = [await _send(a, f"from a {i}") for i in range(3)]
    ids += [await _send(b, f"through b {i}") for i in range(2)]  # forwarded: sent by a

    async def edited() -> bool:  # once the store has the message (written behind the answer)
        r = await a.http.patch(f"/devices/{TOKEN}/messages/{ids[0]}", json={"text": "from a 0, edited"})
        assert r.status_code in (200, 404), r.text
        return r.status_code == 200

    await until(edited, 5, "the first message edited")
    assert [m["id"] for m in await _sent(b)] == ids

    await a.stop()  # a leaves (SIGTERM): it hands the device over, and b takes it at its next round

    async def running_on_b() -> bool:
        device = b.rt.devices.get(TOKEN)
        return device is not None and device.row.status == "connected"

    await until(running_on_b, 15, "the device connected on b")
    ids += [await _send(b, f"from b {i}") for i in range(2)]
    sent = await _sent(b)
    assert [m["id"] for m in sent] == ids  # all seven, in the order WhatsApp received them
    assert [m["text"] for m in sent] == [
        "from a 0, edited",  # the edit kept its place
        "from a 1",
        "from a 2",
        "through b 0",
        "through b 1",
        "from b 0",
        "from b 1",
    ]
    assert all(m["to"] == f"{PEER}@s.whatsapp.net" for m in sent)
    assert "editedAt" in sent[0]
    assert not list((b.settings.data_dir).glob("*-sent.jsonl"))  # kept in the shared world, not in a file


@pytest.fixture
async def world(pg_database: str) -> AsyncIterator[SandboxWorldStore]:
    await migrate(pg_database)
    w = SandboxWorldStore(pg_database, "n0", sent_kept=5)
    await w.start()
    yield w
    await w.stop()


def _record(i: int) -> tuple[str, str, str | None, datetime, dict[str, Any] | None]:
    return (f"3EB0{i:016X}", f"{PEER}@s.whatsapp.net", f"m{i}", datetime.fromtimestamp(1_700_000_000 + i, UTC), None)


async def test_each_turns_records_are_one_write_and_each_device_keeps_its_newest(
    world: SandboxWorldStore, pg_database: str
) -> None:
    """Records of one turn of the loop, of every device, go out in one write; past twice its keep a device's
    oldest rows are deleted; what is read back is the newest ``sent_kept`` in order, an edit in its place."""
    world.record_sent(TOKEN, [_record(0), _record(1)])
    world.record_sent("60100000002", [_record(50)])
    assert len(world._sent_batch) == 3 and not world._tasks  # nothing written until the turn ends
    await world.drain()
    for i in range(2, 12):  # one turn each
        world.record_sent(TOKEN, [_record(i)])
        await world.drain()
    edited = (*_record(9)[:4], {"type": "text", "editedAt": "2026-12-01T00:00:00.000Z"})
    world.record_sent(TOKEN, [edited, _record(12)])
    await world.drain()

    conn = await asyncpg.connect(pg_database)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM sandbox_sent WHERE token = $1", TOKEN)
    finally:
        await conn.close()
    assert 5 <= rows <= 10  # bounded: trimmed back to 5 once past 10

    await world.refresh(TOKEN)
    kept = world.sent_records(TOKEN)
    assert [r[2] for r in kept] == ["m8", "m9", "m10", "m11", "m12"]
    assert kept[1][4] == {"type": "text", "editedAt": "2026-12-01T00:00:00.000Z"}
    assert kept[0][3] == _record(8)[3]
    await world.refresh("60100000002")
    assert [r[2] for r in world.sent_records("60100000002")] == ["m50"]

    world.record_sent(TOKEN, [_record(13)])
    world.forget_sent(TOKEN)  # logged out in the same turn: nothing of it is written after
    await world.drain()
    await world.refresh(TOKEN)
    assert world.sent_records(TOKEN) == []
