"""Faults on a 3-node cluster of real processes (CONTRACT §14): kill -9, SIGTERM and SIGSTOP of a node
that runs devices. The simulated WhatsApp records every connection in PostgreSQL, so "never connected
twice" is asserted, not assumed."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import LEASE_TTL_S, Cluster, running
from tests.support.constants import OTHER
from tests.support.poll import until
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

TOKENS = [f"6012000{i:04d}" for i in range(24)]


@pytest.fixture
def cluster_env() -> dict[str, str]:
    """More variables for every node (a test parametrizes it)."""
    return {}


@pytest.fixture
async def cluster(
    tmp_path: Path, pg_migrated: str, nats_url: str, receiver: Receiver, cluster_env: dict[str, str]
) -> AsyncIterator[Cluster]:
    async with running(tmp_path, pg_migrated, nats_url, 3, WEBHOOK_URL=receiver.url, **cluster_env) as c:
        yield c


def _connected_events(receiver: Receiver, token: str) -> int:
    return sum(1 for h in receiver.hits if h.json()["event"] == "device.connected" and h.json().get("token") == token)


async def test_kill_9_moves_every_device_to_the_others_within_30_s(cluster: Cluster, receiver: Receiver) -> None:
    await cluster.add_devices(TOKENS)
    spread = await cluster.settle(TOKENS)
    victim = cluster.ids.index(spread[TOKENS[0]])
    moved = [t for t, n in spread.items() if n == cluster.ids[victim]]
    assert len(moved) == 8
    await until(lambda: all(_connected_events(receiver, t) >= 1 for t in moved), 20, "device.connected webhooks")
    survivors = {n for i, n in enumerate(cluster.ids) if i != victim}

    began = time.monotonic()
    cluster.nodes[victim].signal(signal.SIGKILL)
    await until(lambda: cluster.connected_on(moved, survivors), 30, "the dead node's devices connected elsewhere")
    took = time.monotonic() - began
    assert took < 30
    print(f"kill -9 failover of {len(moved)} devices: {took:.1f} s (LEASE_TTL_S={LEASE_TTL_S})")
    assert await cluster.doubles() == []  # never connected on two live processes at once
    # each moved device emitted device.connected again, delivered by the survivors' shared outbox
    await until(lambda: all(_connected_events(receiver, t) >= 2 for t in moved), 20, "device.connected again")
    survivor = next(i for i in range(3) if i != victim)

    async def shown() -> bool:  # as of the survivor's next round: the live nodes, every device on one of them
        detail = await cluster.detailed(survivor)
        listed = sorted(t for n in detail["nodes"] for t in n["devices"])
        return sorted(n["id"] for n in detail["nodes"]) == sorted(survivors) and listed == sorted(TOKENS)

    await until(shown, 10, "/health/detailed showing the survivors and every device")


async def test_sigterm_hands_the_devices_over_within_5_s(cluster: Cluster) -> None:
    tokens = TOKENS[:12]
    await cluster.add_devices(tokens)
    spread = await cluster.settle(tokens)
    leaving = cluster.ids.index(spread[tokens[-1]])
    moved = [t for t, n in spread.items() if n == cluster.ids[leaving]]
    survivors = {n for i, n in enumerate(cluster.ids) if i != leaving}
    asked = next(i for i in range(3) if i != leaving)
    async with cluster.client(asked) as c:  # a device another node runs (until calls are forwarded over the bus)
        r = await c.get(f"/devices/{moved[0]}")
        assert r.status_code in (200, 503), r.text
        if r.status_code == 503:
            assert r.json()["error"]["code"] == "DEVICE_MOVING" and int(r.headers["Retry-After"]) >= 1
        assert (await c.get("/devices/60199999999")).json()["error"]["code"] == "DEVICE_NOT_FOUND"
    began = time.monotonic()
    cluster.nodes[leaving].signal(signal.SIGTERM)
    await until(lambda: cluster.connected_on(moved, survivors), 10, "the leaving node's devices connected elsewhere")
    took = time.monotonic() - began
    assert took < 5, took
    assert await asyncio.to_thread(cluster.nodes[leaving].wait) == 0
    assert await cluster.doubles() == []
    gone = await cluster.fetch("SELECT id FROM nodes WHERE id = $1", cluster.ids[leaving])
    assert gone == []  # it left the live list itself


# Receipts 1 s after a send: due while the node is frozen, and before its fence deadline (≥ 1.4 s after its
# last renewal), so on waking it tries to record them before it notices it lost the device.
@pytest.mark.parametrize("cluster_env", [{"SANDBOX_RECEIPT_DELAY_MS": "1000"}])
async def test_a_node_frozen_past_its_lease_stands_down_without_a_stale_write(cluster: Cluster) -> None:
    tokens = TOKENS[:12]
    await cluster.add_devices(tokens)
    spread = await cluster.settle(tokens)
    frozen = cluster.ids.index(spread[tokens[0]])
    node = cluster.nodes[frozen]
    held = [t for t, n in spread.items() if n == cluster.ids[frozen]]
    others = {n for i, n in enumerate(cluster.ids) if i != frozen}
    # A send whose receipts (SANDBOX_RECEIPT_DELAY_MS) fall due while the node is frozen: on waking it
    # tries to record them for a device it no longer holds.
    async with cluster.client(frozen) as c:
        r = await c.post("/messages", json={"token": held[0], "to": OTHER, "text": "before the freeze"})
    node.signal(signal.SIGSTOP)
    assert r.status_code == 200, r.text
    msg_id = r.json()["data"]["messageId"]
    await until(lambda: cluster.connected_on(held, others), 30, "the frozen node's devices taken over")
    woke = (await cluster.fetch("SELECT now()"))[0][0]
    node.signal(signal.SIGCONT)
    await until(lambda: "store.stale_write_refused" in node.log(), 15, "the stale receipt refused")
    await until(lambda: sum(node.log().count(e) for e in ("cluster.lease_lost", "cluster.lease_expired")) >= len(held))
    refused = [line for line in node.log().splitlines() if "store.stale_write_refused" in line]
    assert all(cluster.ids[frozen] in line for line in refused) and any(held[0] in line for line in refused)
    status = await cluster.fetch("SELECT status FROM messages WHERE token = $1 AND id = $2", held[0], msg_id)
    assert [r[0] for r in status] in ([], ["sent"])  # the old owner's receipt never landed
    # Awake, it is a live node again, and the rebalance hands it devices back: only under a lease taken
    # after it woke, never one kept from before the freeze, and no connection before that lease.
    await cluster.settle(tokens)  # each device connected once, where its lease is, spread evenly again
    kept = await cluster.fetch(
        "SELECT token FROM device_leases WHERE node = $1 AND expires_at > now() AND acquired_at <= $2",
        cluster.ids[frozen],
        woke,
    )
    assert kept == []  # it stood down: no lease of its own survived the freeze
    reopened = await cluster.fetch(
        "SELECT c.token FROM sandbox_connections c LEFT JOIN device_leases l ON l.token = c.token AND l.node = c.node"
        " WHERE c.node = $1 AND c.opened_at > $2 AND (l.acquired_at IS NULL OR c.opened_at < l.acquired_at)",
        cluster.ids[frozen],
        woke,
    )
    assert reopened == []  # no connection of its own came back without a new lease


async def test_a_campaign_runs_only_where_its_device_is_and_moves_with_it(
    tmp_path: Path, pg_migrated: str, nats_url: str
) -> None:
    """Every node resumes active campaigns at start; only the device's node may run one (elsewhere it would
    find no device). SIGTERM mid-campaign: it carries on at the new owner, each recipient sent once."""
    from bench.gateway_api import valid_tokens

    c = Cluster(tmp_path, pg_migrated, nats_url, 3, CAMPAIGN_CLOCK_SCALE="4", SANDBOX_RECEIPT_DELAY_MS="20")
    try:
        await asyncio.to_thread(c.start)
        token = TOKENS[0]
        await c.add_devices([token])
        recipients = valid_tokens(20, start=60_123_000_001)
        body = {
            "token": token,
            "name": "moving",
            "message": {"text": "Hi {{name}}"},
            "recipients": [{"phone": p, "name": f"P{i}"} for i, p in enumerate(recipients)],
            "pace": {"perMinute": 60, "jitterPct": 0},
            "validate": False,
        }
        r = await c.call("POST", "/campaigns", json=body)
        assert r.status_code == 201, r.text
        cid = r.json()["data"]["id"]

        async def campaign() -> dict[str, Any]:
            data: dict[str, Any] = (await c.call("GET", f"/campaigns/{cid}")).json()["data"]
            return data

        await until(lambda: _sent_at_least(campaign, 5), 30, "five sends")
        owner = c.ids.index((await c.holders())[token])
        c.nodes[owner].signal(signal.SIGTERM)
        done = await until(lambda: _completed(campaign), 60, "the campaign completed at the new owner")
        assert (done["total"], done["sent"], done["failed"]) == (20, 20, 0)
        rows = await c.fetch(
            "SELECT chat, COUNT(*) FROM messages WHERE token = $1 AND direction = 'out' GROUP BY chat", token
        )
        assert sorted(r[0] for r in rows) == sorted(f"{p}@s.whatsapp.net" for p in recipients)
        assert {r[1] for r in rows} == {1}  # nobody twice, across the move
    finally:
        c.kill()
        await c.close_db()


async def _sent_at_least(campaign: Any, n: int) -> bool:
    data = await campaign()
    assert data["status"] in ("scheduled", "running"), data  # never failed by a node without the device
    return bool(data["sent"] >= n)


async def _completed(campaign: Any) -> Any:
    data = await campaign()
    assert data["status"] != "failed", data
    return data if data["status"] == "completed" else None
