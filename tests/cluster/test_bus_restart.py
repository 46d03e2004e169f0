"""NATS restarted under a running cluster (CONTRACT §14, issue 17's fault list): while the bus is gone a
call that must be forwarded to another node answers ``503 DEVICE_MOVING`` with ``Retry-After`` (never a
hang, never a 500), a call for a device the node runs itself still works, and once the bus is back the
forwarded calls work again — no node restarted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support import services
from tests.support.cluster import Cluster, running
from tests.support.constants import OTHER
from tests.support.poll import until

pytestmark = pytest.mark.e2e

TOKENS = [f"6012500{i:04d}" for i in range(2)]


async def _send(cluster: Cluster, node: int, token: str) -> httpx.Response:
    async with cluster.client(node) as c:
        return await c.post("/messages", json={"token": token, "to": OTHER, "text": "through the bus"})


async def test_a_bus_restart_answers_503_meanwhile_and_recovers(tmp_path: Path, pg_migrated: str) -> None:
    with services.throwaway_nats_server(tmp_path / "nats") as nats:
        async with running(tmp_path, pg_migrated, nats.url, 2) as cluster:
            await cluster.add_devices(TOKENS)
            spread = await cluster.settle(TOKENS)
            token = TOKENS[0]
            owner = cluster.ids.index(spread[token])
            other = 1 - owner
            assert (await _send(cluster, other, token)).status_code == 200  # forwarded to the owner
            pids = [node.pid for node in cluster.nodes]

            await asyncio.to_thread(nats.stop)

            async def refused() -> httpx.Response | None:
                r = await _send(cluster, other, token)
                return r if r.status_code == 503 else None

            r = await until(refused, 20, "a forwarded call refused while the bus is down")
            assert r.json()["error"]["code"] == "DEVICE_MOVING" and int(r.headers["Retry-After"]) >= 1
            assert (await _send(cluster, owner, token)).status_code == 200  # the owner itself still sends

            await asyncio.to_thread(nats.start)

            async def forwarded() -> bool:
                return (await _send(cluster, other, token)).status_code == 200

            await until(forwarded, 30, "forwarded calls working again once the bus is back")
            assert [node.pid for node in cluster.nodes] == pids and all(cluster.alive(i) for i in range(2))
