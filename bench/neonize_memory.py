"""Memory per neonize client: 50 real neonize clients, started with no internet.

    python bench/neonize_memory.py [--clients 50]      (or: python -m bench.neonize_memory)

Phases, all in this process (RSS from /proc/self/status):

1. ``baseline``: Python + the driver module imported (loads the 18 MB Go
   library and starts the Go runtime).
2. ``dialing``: N drivers connect through a local proxy that accepts and never
   answers, so each whatsmeow client is created, has opened its session store
   and sits in its dial inside Go, one dedicated thread each: an idle, started
   client. Per-client figure = (dialing - baseline) / N.
3. ``after_close``: the proxy hangs up (every dial fails), all drivers close;
   what stays resident is what a closed client leaves behind.
4. ``failed_dial_in_go``: N more drivers connect straight to the (unreachable)
   internet with the driver's pre-flight off: whatsmeow's dial fails at once,
   and goneonize keeps the session store it opened (one fd per attempt).
5. ``failed_preflight``: the same with the pre-flight on (the default): the
   dial fails in Python and Go is never called.

Writes bench/results/neonize_memory.json. Bounded: every wait has a deadline
and the whole run a time budget (default 180 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import from the repo, not from bench/ (bench/http.py)
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import report, servers
from gateway.drivers.base import ConnectError, DriverOptions

TARGET_MB_PER_CLIENT = 5.0


def rss() -> float:
    return round(servers.rss_mb(os.getpid()), 1)


async def settle() -> float:
    """RSS after garbage collection and a short pause for Go's allocator to quieten."""
    gc.collect()
    await asyncio.sleep(1.0)
    return rss()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def conn_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("neonize-conn-"))


async def until(predicate: Any, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    print(f"  {what}")


async def run(clients: int, data_dir: Path) -> dict[str, Any]:
    before_import = rss()
    from gateway.drivers.neonize import NeonizeDriver

    baseline = await settle()
    print(f"python alone {before_import} MiB; with neonize loaded {baseline} MiB")

    held: list[asyncio.StreamWriter] = []
    dials = 0

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dials
        held.append(writer)
        with contextlib.suppress(OSError):
            if await reader.read(1):  # whatsmeow's CONNECT; the driver's pre-flight says nothing
                dials += 1

    server = await asyncio.start_server(hold, "127.0.0.1", 0, backlog=clients * 2)
    proxy = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    options = DriverOptions(
        data_dir=data_dir / "dialing", extra={"neonize_proxy": proxy, "neonize_connect_timeout_s": 120}
    )
    drivers = [NeonizeDriver(str(60_120_000_001 + n), options) for n in range(clients)]
    began = time.perf_counter()
    connects = [asyncio.create_task(d.connect()) for d in drivers]
    await until(lambda: dials == clients, 60, f"{clients} clients dialing")
    ramp_s = round(time.perf_counter() - began, 2)
    dialing = await settle()
    threads = conn_threads()
    print(f"dialing: {dialing} MiB, {threads} connection threads, {threading.active_count()} threads in all")

    for writer in held:
        writer.close()
    results = await asyncio.wait_for(asyncio.gather(*connects, return_exceptions=True), 30)
    failed = sum(isinstance(r, ConnectError) for r in results)
    await asyncio.gather(*(d.close() for d in drivers))
    server.close()
    await server.wait_closed()
    await until(lambda: conn_threads() == 0, 30, "all connection threads ended")
    del drivers, connects, results
    after_close = await settle()
    print(f"after hang-up and close: {after_close} MiB ({failed}/{clients} connects failed as expected)")

    async def failed_dials(name: str, first: int, preflight: bool) -> tuple[float, int]:
        fds = open_fds()
        opts = DriverOptions(data_dir=data_dir / name, extra={"neonize_preflight": preflight})
        direct = [NeonizeDriver(str(first + n), opts) for n in range(clients)]
        results = await asyncio.gather(*(d.connect() for d in direct), return_exceptions=True)
        assert all(isinstance(r, ConnectError) for r in results), results[:3]
        await asyncio.gather(*(d.close() for d in direct))
        return await settle(), open_fds() - fds

    failed_dial, leaked_fds = await failed_dials("through-go", 60_130_000_001, preflight=False)
    print(f"after {clients} dials failed inside Go: {failed_dial} MiB, {leaked_fds} file descriptors leaked")
    preflight_rss, preflight_fds = await failed_dials("preflight", 60_140_000_001, preflight=True)
    print(f"after {clients} dials stopped by the pre-flight: {preflight_rss} MiB, {preflight_fds} fds leaked")

    per_client = round((dialing - baseline) / clients, 3)
    retained = round((after_close - baseline) / clients, 3)
    failed_per_client = round((failed_dial - after_close) / clients, 3)
    preflight_per_client = round((preflight_rss - failed_dial) / clients, 3)
    print(f"\nRSS per idle started client: {per_client} MiB (target < {TARGET_MB_PER_CLIENT})")
    print(f"retained per client after close: {retained} MiB")
    print(f"per failed dial inside Go: {failed_per_client} MiB and {leaked_fds / clients:g} fd (goneonize leak)")
    print(f"per dial stopped by the pre-flight: {preflight_per_client} MiB and {preflight_fds / clients:g} fd")
    return {
        "clients": clients,
        "rss_mb": {
            "python_alone": before_import,
            "baseline_neonize_loaded": baseline,
            "dialing": dialing,
            "after_close": after_close,
            "after_failed_dials": failed_dial,
        },
        "per_client_mb": {
            "idle_started": per_client,
            "retained_after_close": retained,
            "failed_dial": failed_per_client,
        },
        "connection_threads_while_dialing": threads,
        "ramp_seconds": ramp_s,
        "targets": {
            "rss_per_idle_client_mb": {
                "value": per_client,
                "target": f"< {TARGET_MB_PER_CLIENT}",
                "verdict": report.verdict(per_client, TARGET_MB_PER_CLIENT),
            }
        },
    }


async def main_async(clients: int, budget: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="neonize-memory-") as tmp:
        async with asyncio.timeout(budget):
            return await run(clients, Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--budget", type=float, default=180.0, help="seconds for the whole run")
    args = parser.parse_args()
    data = asyncio.run(main_async(args.clients, args.budget))
    path = report.write_result("neonize_memory", data)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
