"""WebSocket events across nodes (gateway/cluster/events.py): a listener on any node gets every event
it is entitled to, in per-device order, once; webhooks stay out of the bus.

Two in-process nodes on one PostgreSQL database and one NATS server; the listeners are the Hub's own
clients (what a WebSocket reads from), so no socket is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.events import Client
from tests.support.gateway import Gateway
from tests.support.poll import until

TOKEN = "60123456789"
OTHER = "60123456788"
SENDER = "60198765432"


def listen(gw: Gateway, owner_id: int | None = None, is_admin: bool = True) -> Client:
    client = Client(owner_id, is_admin, queue_size=10_000)
    gw.rt.hub.attach(client)
    return client


def frames(client: Client) -> list[dict[str, Any]]:
    """What the client has been sent so far (its queue, drained)."""
    out = []
    while not client.queue.empty():
        out.append(orjson.loads(client.queue.get_nowait()))
    return out


async def collect(client: Client, seen: list[dict[str, Any]], pred: Callable[[list[dict[str, Any]]], bool]) -> None:
    async def ready() -> bool:
        seen.extend(frames(client))
        return pred(seen)

    await until(ready, 10)


async def test_every_node_streams_a_devices_events_in_order_and_the_origin_once(
    nodes: list[Gateway],
) -> None:
    a, b = nodes
    on_a, on_b = listen(a), listen(b)
    await a.pair(TOKEN)
    for i in range(50):
        r = await a.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": SENDER, "text": f"m{i}"})
        assert r.status_code == 200, r.text

    def texts(seen: list[dict[str, Any]]) -> list[str]:
        return [f["data"]["text"] for f in seen if f["event"] == "message"]

    seen_a: list[dict[str, Any]] = []
    seen_b: list[dict[str, Any]] = []
    await collect(on_b, seen_b, lambda s: len(texts(s)) == 50)
    await collect(on_a, seen_a, lambda s: len(texts(s)) == 50)
    assert texts(seen_b) == [f"m{i}" for i in range(50)]  # per-device order across the bus
    assert texts(seen_a) == texts(seen_b)  # the origin node delivered each once (not again from the bus)
    # Same frames, field for field (the event time too), pairing and connection frames included.
    assert seen_b == seen_a
    assert {"qrcode", "connection-success", "session_update"} <= {f["event"] for f in seen_b}
    assert b.rt.devices.get(TOKEN) is None  # b never had the device: all it showed came over the bus


async def test_a_listener_on_another_node_sees_only_its_accounts_devices(
    nodes: list[Gateway],
) -> None:
    a, b = nodes
    accounts = []
    for name in ("alice", "bob"):
        body = {"username": name, "email": f"{name}@example.com", "password": "correct horse battery"}
        r = await a.http.post("/auth/signup", json=body)
        assert r.status_code == 200, r.text
        accounts.append(r.json()["data"])
    alice, bob = accounts
    alice_http = a.client(headers={"X-API-Key": alice["apiKey"]})
    r = await alice_http.post("/devices", json={"token": TOKEN})
    assert r.status_code == 200, r.text
    alice_on_b = listen(b, alice["userId"], is_admin=False)
    bob_on_b = listen(b, bob["userId"], is_admin=False)
    admin_on_b = listen(b)
    await a.post(f"/sandbox/devices/{TOKEN}/scan")
    await a.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": SENDER, "text": "for alice"})

    seen_admin: list[dict[str, Any]] = []
    await collect(admin_on_b, seen_admin, lambda s: any(f["event"] == "message" for f in s))
    seen_alice: list[dict[str, Any]] = []
    await collect(alice_on_b, seen_alice, lambda s: any(f["event"] == "message" for f in s))
    assert [f["event"] for f in seen_alice] == [f["event"] for f in seen_admin]
    # Bob's listener got nothing at all, though every frame above crossed node b's hub before alice's.
    assert frames(bob_on_b) == []


async def test_a_listeners_subscription_filters_remote_events_too(
    nodes: list[Gateway],
) -> None:
    a, b = nodes
    other = OTHER
    only_messages = listen(b)
    b.rt.hub.resubscribe(only_messages, ["message"], [other])
    await a.pair(TOKEN)
    await a.pair(other)
    await a.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": SENDER, "text": "not wanted"})
    await a.post(f"/sandbox/devices/{other}/incoming", {"from": SENDER, "text": "wanted"})
    seen: list[dict[str, Any]] = []
    await collect(only_messages, seen, lambda s: len(s) >= 1)
    assert [(f["event"], f["token"], f["data"]["text"]) for f in seen] == [("message", other, "wanted")]
    assert a.rt.bus is not None and b.rt.hub.relay is not None


async def test_the_nodes_of_one_database_share_subjects_that_no_other_database_uses(
    nodes: list[Gateway], postgres_url: str
) -> None:
    """Clusters sharing a NATS server never hear each other: subjects are named after the database."""
    a, b = nodes
    assert a.rt.bus.prefix == b.rt.bus.prefix and a.rt.bus.prefix.startswith("wa.") and a.rt.bus.prefix != "wa."
    import asyncpg

    conn = await asyncpg.connect(postgres_url)  # another database of the same server, only read
    try:
        other = await conn.fetchval(
            "SELECT system_identifier::text || '/' || (SELECT oid FROM pg_database"
            " WHERE datname = current_database())::text FROM pg_control_system()"
        )
    finally:
        await conn.close()
    mine = await a.rt.store.identity()
    assert other != mine and other.split("/")[0] == mine.split("/")[0]  # same server, another database
