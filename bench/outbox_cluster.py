"""The cluster's outbox: signed webhooks per second delivered by N nodes sharing one PostgreSQL outbox.

CONTRACT §14 / issue 17: "the cluster's outbox delivers ≥ 2,000 signed webhooks/s across nodes". Real
``python -m gateway`` nodes (sandbox driver, ``DATABASE_URL`` + ``BUS_URL``, ``WEBHOOK_URL`` and
``WEBHOOK_SECRET`` set) join one fresh PostgreSQL database and the NATS server; once every node is ready, a
backlog of ``--backlog`` signed ``message.received`` deliveries is committed to the shared outbox in one
transaction, and the clock runs from that commit until no row is pending. Each node claims rows with
``FOR UPDATE SKIP LOCKED`` (found by its poll, ``gateway.webhooks.dispatcher``) and delivers them to the
receiver of ``bench.webhooks`` (a raw asyncio server in its own process that answers 204 and checks every
50th signature). Runs with 1 node and with ``--nodes`` nodes, side by side; a delivery made twice shows as
more arrivals than rows.

    python -m bench.outbox_cluster [--backlog 20000] [--nodes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import report, servers
from bench.store import fresh_database
from bench.webhooks import SECRET, ReceiverProcess, _rows
from tests.support import services
from tests.support.constants import API_KEY
from tests.support.proc import ServerProcess


async def _pending(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return n
    finally:
        await conn.close()


async def _enqueue(workdir: Path, url: str, receiver: str, backlog: int) -> float:
    """Commit the whole backlog at once (one transaction): the time of the commit."""
    from gateway.store import Store

    store = await Store.open(workdir / "loader", url)
    try:
        async with store.transaction():
            for start in range(0, backlog, 1000):
                await store.enqueue(_rows(receiver, start, min(1000, backlog - start), time.time()))
        return time.time()
    finally:
        await store.close()


def one_run(workdir: Path, server: str, bus: str, n: int, backlog: int) -> dict[str, Any]:
    recv = ReceiverProcess(workdir)
    nodes: list[ServerProcess] = []
    try:
        with fresh_database(server) as url:
            common = {
                "DATABASE_URL": url,
                "BUS_URL": bus,
                "WEBHOOK_URL": recv.url,
                "WEBHOOK_SECRET": SECRET,
                "LOG_LEVEL": "warning",
                "MEDIA_DIR": str(workdir / f"media-{n}"),
            }
            nodes = [ServerProcess(workdir / f"n{n}-{i}", NODE_ID=f"bench-{n}-{i}", **common) for i in range(n)]
            for node in nodes:
                node.start(wait=False)
            for node in nodes:
                node.wait_ready("/health/ready", 60)
            committed = asyncio.run(_enqueue(workdir, url, recv.url, backlog))
            deadline = time.monotonic() + 300
            while asyncio.run(_pending(url)) and time.monotonic() < deadline:
                time.sleep(0.05)
            done = time.time()
            left = asyncio.run(_pending(url))
            for node in nodes:
                node.stop()
            nodes = []
    finally:
        for node in nodes:
            node.kill()
        got = recv.finish()
    seconds = done - committed
    received = len(got["arrivals"])
    return {
        "nodes": n,
        "deliveries": backlog,
        "seconds": round(seconds, 3),
        "per_second": round((backlog - left) / seconds, 1) if seconds > 0 else 0.0,
        "left_pending": left,
        "received": received,
        "delivered_twice": max(0, received - backlog),
        "signatures_checked": got["checked"],
        "bad_signatures": got["bad"],
        "load_average": os.getloadavg(),
    }


def run(backlog: int, nodes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"params": {"backlog": backlog, "nodes": nodes}, "runs": []}
    with servers.workdir("outbox-cluster") as wd, services.postgres() as server, services.nats(wd) as bus:
        for n in (1, nodes):
            result = one_run(wd, server, bus, n, backlog)
            print(f"{n} node(s): {result}", flush=True)
            out["runs"].append(result)
    cluster = out["runs"][-1]
    rate, twice = cluster["per_second"], cluster["delivered_twice"]
    lost = cluster["left_pending"] + max(0, backlog - cluster["received"])
    out["targets"] = {
        f"signed_webhooks_per_second_{nodes}_nodes": {
            "value": rate,
            "target": ">= 2000",
            "verdict": report.verdict(rate, 2000, True),
            "one_node": out["runs"][0]["per_second"],
        },
        "webhooks_lost": {"value": lost, "target": "0", "verdict": report.verdict(lost, 0.5)},
        "delivered_twice_by_live_nodes": {"value": twice, "target": "0", "verdict": report.verdict(twice, 0.5)},
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()
    assert API_KEY  # the nodes run with the tests' admin key (cluster mode requires one)
    out = run(args.backlog, args.nodes)
    report.finish("outbox_cluster", out)


if __name__ == "__main__":
    main()
