"""Driving the gateway's API from a benchmark: valid phone numbers, a client, pairing at scale."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench.servers import API_KEY, Server


def valid_tokens(n: int, start: int = 60_120_000_001) -> list[str]:
    """``n`` distinct phone numbers that ``phonenumbers`` accepts (Malaysian mobiles)."""
    from gateway.phones import InvalidPhone, normalize

    out: list[str] = []
    candidate = start
    limit = start + n * 10 + 1000
    while len(out) < n and candidate < limit:
        with contextlib.suppress(InvalidPhone):
            out.append(normalize(str(candidate)))
        candidate += 1
    if len(out) < n:
        raise RuntimeError(f"only {len(out)} valid numbers from {start}")
    return out


def api_client(server: Server, connections: int = 64, timeout: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base,
        headers={"X-API-Key": API_KEY},
        timeout=timeout,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def pair_devices(
    client: httpx.AsyncClient, tokens: Sequence[str], concurrency: int = 32, deadline_s: float = 300.0
) -> dict[str, Any]:
    """Create and pair every token (``POST /devices`` + sandbox scan), ``concurrency`` at a time."""
    sem = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one(token: str) -> None:
        async with sem:
            r = await client.post("/devices", json={"token": token})
            if r.status_code != 200:
                failures.append(f"{token}: create {r.status_code} {r.text[:120]}")
                return
            r = await client.post(f"/sandbox/devices/{token}/scan")
            if r.status_code != 200 or r.json()["data"]["status"] != "connected":
                failures.append(f"{token}: scan {r.status_code} {r.text[:120]}")

    began = time.perf_counter()
    async with asyncio.timeout(deadline_s):
        await asyncio.gather(*(one(t) for t in tokens))
    return {
        "devices": len(tokens),
        "seconds": round(time.perf_counter() - began, 3),
        "failures": failures[:10],
        "failed": len(failures),
    }


async def count_connected(client: httpx.AsyncClient) -> tuple[int, int]:
    """(connected, total) from ``GET /devices``."""
    r = await client.get("/devices")
    r.raise_for_status()
    devices = r.json()["data"]["devices"]
    return sum(1 for d in devices if d["status"] == "connected"), len(devices)


async def wait_connected(
    client: httpx.AsyncClient, want: int, timeout: float, interval: float = 0.1
) -> tuple[float | None, int]:
    """Poll ``GET /devices`` until ``want`` devices are connected: (seconds or None, last count)."""
    began = time.perf_counter()
    connected = 0
    while time.perf_counter() - began < timeout:
        with contextlib.suppress(httpx.HTTPError):
            connected, _ = await count_connected(client)
            if connected >= want:
                return time.perf_counter() - began, connected
        await asyncio.sleep(interval)
    return None, connected
