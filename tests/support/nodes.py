"""Nodes of one cluster in the test's event loop: in-process gateways on one PostgreSQL database and
one NATS server (CONTRACT §14), each with its own data directory and node id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.support.bus import synced
from tests.support.constants import TOKEN
from tests.support.gateway import Gateway

BUS_TIMEOUT_S = 10.0


async def start_nodes(
    gateway_factory: Callable[..., Awaitable[Gateway]],
    tmp_path: Path,
    database_url: str,
    bus_url: str,
    count: int = 2,
    **overrides: Any,
) -> list[Gateway]:
    """``count`` nodes named ``n0``, ``n1``…, each connected to the bus before it is returned."""
    nodes: list[Gateway] = []
    for i in range(count):
        data_dir = tmp_path / f"n{i}"
        data_dir.mkdir(exist_ok=True)
        gw = await gateway_factory(
            data_dir=data_dir, database_url=database_url, bus_url=bus_url, node_id=f"n{i}", **overrides
        )
        assert await gw.rt.bus.wait_connected(BUS_TIMEOUT_S), f"node n{i} did not reach the bus"
        nodes.append(gw)
    return nodes


async def owned_by_a(nodes: list[Gateway]) -> tuple[Gateway, Gateway]:
    """The first two nodes, the device ``TOKEN`` paired on the first and known to the bus as its own."""
    a, b = nodes[0], nodes[1]
    await a.pair(TOKEN)
    await a.rt.forwarder.on_acquired(TOKEN)
    await synced(a.rt.bus)
    return a, b
