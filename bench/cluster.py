"""A call forwarded to another node vs the same call on the device's own node (CONTRACT §14).

Two nodes on one PostgreSQL database and one NATS server (the machine's, or throwaway ones:
``tests/support/services.py``). By default two real ``python -m gateway`` processes
(``tests/support/cluster.py``): a sandbox device is created and paired, and its lease decides its owner.
``POST /messages`` for the device goes to the owner (local) and to the other node (forwarded over NATS and
answered verbatim), one at a time, alternating, each over its own keep-alive HTTP connection, so both see
the same load; each call is timed from the request to the whole answer.

``--in-process``: both nodes' apps in this process (httpx's ASGI transport, no socket), node ``a`` serving
the device: what forwarding adds without HTTP, but with both nodes sharing one event loop.

    python -m bench.cluster [--requests 2000] [--warmup 200] [--in-process]

Target: the forwarded p99 is less than 3 ms above the local p99.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report, stats
from bench.store import fresh_database
from tests.support import services
from tests.support.cluster import Cluster
from tests.support.gateway import InProcessGateway
from tests.support.settings import make_settings

TOKEN = "60123456789"
TO = "60198765432"
TARGET_MS = 3.0


async def _measure(a: InProcessGateway, b: InProcessGateway, requests: int, warmup: int) -> dict[str, Any]:
    local: list[float] = []
    forwarded: list[float] = []
    for i in range(warmup + requests):
        for gw, sink in ((a, local), (b, forwarded)) if i % 2 == 0 else ((b, forwarded), (a, local)):
            began = time.perf_counter()
            r = await gw.post("/messages", {"token": TOKEN, "to": TO, "text": f"m{i}"})
            took = time.perf_counter() - began
            if r.status_code != 200:
                raise RuntimeError(f"POST /messages answered {r.status_code}: {r.text}")
            if i >= warmup:
                sink.append(took)
    return {"local": stats.summarize_ms(local), "forwarded": stats.summarize_ms(forwarded)}


async def _run(db_url: str, nats_url: str, workdir: Path, requests: int, warmup: int) -> dict[str, Any]:
    nodes: list[InProcessGateway] = []
    try:
        for node in ("a", "b"):
            data_dir = workdir / node
            data_dir.mkdir()
            settings = make_settings(data_dir, database_url=db_url, bus_url=nats_url, node_id=node, log_level="warning")
            gw = InProcessGateway(settings)
            await gw.start()
            nodes.append(gw)
            if not await gw.rt.bus.wait_connected(10):
                raise RuntimeError(f"node {node} did not reach NATS at {nats_url}")
        a, b = nodes
        await a.pair(TOKEN)
        await a.rt.forwarder.on_acquired(TOKEN)
        await a.rt.bus._nc.flush()
        figures = await _measure(a, b, requests, warmup)
        figures["served_by_owner"] = a.rt.forwarder.served
        return figures
    finally:
        for gw in reversed(nodes):
            await gw.stop()


async def _run_processes(db_url: str, nats_url: str, workdir: Path, requests: int, warmup: int) -> dict[str, Any]:
    nodes = Cluster(workdir, db_url, nats_url, n=2, ttl_s=15, RATE_LIMIT_PER_MINUTE="0", LOG_LEVEL="warning")
    try:
        await asyncio.to_thread(nodes.start)
        await nodes.add_devices([TOKEN])
        owner = nodes.ids.index((await nodes.holders())[TOKEN])
        local, forwarded = nodes.client(owner), nodes.client(1 - owner)
        try:
            timings = {"local": [], "forwarded": []}
            for i in range(warmup + requests):
                pair = (("local", local), ("forwarded", forwarded))
                for kind, client in pair if i % 2 == 0 else pair[::-1]:
                    began = time.perf_counter()
                    r = await client.post("/messages", json={"token": TOKEN, "to": TO, "text": f"m{i}"})
                    took = time.perf_counter() - began
                    if r.status_code != 200:
                        raise RuntimeError(f"{kind} POST /messages answered {r.status_code}: {r.text}")
                    if i >= warmup:
                        timings[kind].append(took)
        finally:
            await local.aclose()
            await forwarded.aclose()
        return {kind: stats.summarize_ms(values) for kind, values in timings.items()}
    finally:
        await asyncio.to_thread(nodes.kill)
        await nodes.close_db()


def run(requests: int = 2000, warmup: int = 200, in_process: bool = False) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        services.postgres() as server,
        fresh_database(server) as db_url,
        services.nats(Path(tmp)) as nats_url,
    ):
        how = _run if in_process else _run_processes
        figures = asyncio.run(how(db_url, nats_url, Path(tmp), requests, warmup))
    added = round(figures["forwarded"]["p99"] - figures["local"]["p99"], 3)
    added_p50 = round(figures["forwarded"]["p50"] - figures["local"]["p50"], 3)
    return {
        "nodes": "in-process" if in_process else "processes",
        "requests_each": requests,
        **figures,
        "targets": {
            "forwarded_p99_added_ms": {
                "value": added,
                "target": f"< {TARGET_MS}",
                "verdict": report.verdict(added, TARGET_MS),
            },
            "forwarded_p50_added_ms": {"value": added_p50, "target": "reported", "verdict": "-"},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="timed calls of each kind")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls of each kind first")
    parser.add_argument("--in-process", action="store_true", help="both nodes' apps in this process")
    args = parser.parse_args()
    result = run(args.requests, args.warmup, args.in_process)
    rows = [
        (kind, result[kind]["p50"], result[kind]["p90"], result[kind]["p99"], result[kind]["max"])
        for kind in ("local", "forwarded")
    ]
    print(report.table(rows, ("POST /messages", "p50 ms", "p90 ms", "p99 ms", "max ms")))
    t = result["targets"]["forwarded_p99_added_ms"]
    print(f"forwarding adds {t['value']} ms at p99 (target {t['target']}): {t['verdict']}")
    print(f"wrote {report.write_result('cluster', result)}")


if __name__ == "__main__":
    main()
