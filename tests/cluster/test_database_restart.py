"""PostgreSQL restarted under a running cluster (CONTRACT §14, issue 17's fault list): the nodes are not
restarted. While the database is gone they stay alive, say they are not ready and stop their devices at
their fence deadline; once it is back they rejoin, and every device is connected again, exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support import services
from tests.support.cluster import Cluster, running
from tests.support.poll import until

pytestmark = pytest.mark.e2e

TOKENS = [f"6012100{i:04d}" for i in range(4)]


async def _ready(cluster: Cluster) -> list[int]:
    codes = []
    for node in cluster.nodes:
        async with httpx.AsyncClient(base_url=node.base, timeout=2) as c:
            try:
                codes.append((await c.get("/health/ready")).status_code)
            except httpx.HTTPError:
                codes.append(0)
    return codes


async def test_a_database_restart_is_survived_without_restarting_the_nodes(tmp_path: Path, nats_url: str) -> None:
    with services.throwaway_server() as pg:
        async with running(tmp_path, pg.url, nats_url, 2) as cluster:
            await cluster.add_devices(TOKENS)
            await cluster.settle(TOKENS)
            pids = [node.pid for node in cluster.nodes]

            async def none_ready() -> bool:
                return all(code == 503 for code in await _ready(cluster))

            async def all_ready() -> bool:
                return all(code == 200 for code in await _ready(cluster))

            await asyncio.to_thread(pg.stop, "immediate")
            await until(none_ready, 30, "both nodes say they are not ready while the database is gone")
            assert all(cluster.alive(i) for i in range(2))

            await asyncio.to_thread(pg.start)
            await until(all_ready, 60, "both nodes ready again once the database is back")
            await cluster.settle(TOKENS)
            assert [node.pid for node in cluster.nodes] == pids  # the same processes: nobody restarted them
            assert await cluster.doubles() == []
