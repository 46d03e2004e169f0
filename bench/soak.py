"""Soak: mixed traffic for minutes, gateway RSS sampled every 10 s, slope.

Traffic, at a constant total rate, round-robin over the paired devices: sends
(``POST /messages``), phone validations (``POST /validate/phone``, a bounded
pool of numbers so the cache fills and stays full), incoming messages
(``POST /sandbox/devices/{token}/incoming``, a bounded pool of senders),
WebSocket listeners that are closed and reopened all along, and a device drop
every few seconds (the sandbox reconnects it on its own). A leak shows as a
positive RSS slope after warm-up; the report gives the least-squares slope in
MiB per minute and whether it is a growth trend. Before sampling, the
sandbox's per-device log of the last 1,000 sent messages is filled (the one
large buffer that is bounded but slow to fill at this rate: 15 MiB of growth in
a first 10-minute run was mostly that log, and tracemalloc over 40,000 mixed
requests in-process showed no other growing allocation site).

    python -m bench.soak [--minutes 10] [--devices 50] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import time
from typing import Any

import httpx

from bench import gateway_api, loadgen, report, servers, stats

GROWTH_MB_PER_MIN = 0.5  # above this (after warm-up) we call it a growth trend
SANDBOX_SENT_LOG = 1000  # messages the sandbox keeps per device (CONTRACT §9)


async def _listener(port: int, query: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """Open a listener, read for a while, close it; again until ``stop``."""
    from websockets.asyncio.client import connect

    url = f"ws://{servers.HOST}:{port}/ws?apiKey={servers.API_KEY}{query}"
    while not stop.is_set():
        try:
            async with connect(url, open_timeout=10) as ws:
                counts["ws_opened"] += 1
                life = time.monotonic() + random.uniform(5, 20)
                while not stop.is_set() and time.monotonic() < life:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ws.recv(), 1.0)
                        counts["ws_frames"] += 1
        except Exception:
            counts["ws_errors"] += 1
            await asyncio.sleep(1)


async def _traffic(
    client: httpx.AsyncClient,
    tokens: list[str],
    rate: float,
    seconds: float,
    have: dict[str, bool],
    counts: dict[str, int],
) -> None:
    phones = gateway_api.valid_tokens(300, start=60_171_000_001)
    senders = gateway_api.valid_tokens(100, start=60_191_000_001)
    ops = [op for op in ("send", "validate", "incoming", "incoming") if have.get(op, True)]
    cycle = itertools.cycle(ops)
    sem = asyncio.Semaphore(64)
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, op: str) -> None:
        token = tokens[i % len(tokens)]
        async with sem:
            try:
                if op == "send":
                    r = await client.post(
                        "/messages", json={"token": token, "to": random.choice(phones), "text": f"soak {i}"}
                    )
                elif op == "validate":
                    r = await client.post("/validate/phone", json={"token": token, "phone": random.choice(phones)})
                else:
                    r = await client.post(
                        f"/sandbox/devices/{token}/incoming",
                        json={"from": random.choice(senders), "name": "Soak", "text": f"in {i}"},
                    )
            except httpx.HTTPError:
                counts["http_errors"] += 1
                return
        key = f"{op}_{r.status_code}"
        counts[key] = counts.get(key, 0) + 1

    t0 = time.perf_counter()
    total = int(rate * seconds)
    next_drop = t0 + 5
    for i in range(total):
        target = t0 + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, next(cycle)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if time.perf_counter() >= next_drop:
            next_drop += 5
            token = random.choice(tokens)
            with contextlib.suppress(httpx.HTTPError):
                r = await client.post(f"/sandbox/devices/{token}/drop")
                counts[f"drop_{r.status_code}"] = counts.get(f"drop_{r.status_code}", 0) + 1
    if tasks:
        await asyncio.wait(set(tasks), timeout=30)


async def _fill_sent_logs(client: httpx.AsyncClient, tokens: list[str], per_device: int) -> dict[str, Any]:
    """Warm-up before sampling: fill the one large bounded buffer, the sandbox's log of the
    last 1,000 sent messages per device (§9), so its filling is not read as a leak."""
    began = time.perf_counter()
    sem = asyncio.Semaphore(64)
    failed = 0

    async def one(token: str, i: int) -> None:
        nonlocal failed
        async with sem:
            r = await client.post("/messages", json={"token": token, "to": tokens[0], "text": f"warm-up {i}"})
            failed += r.status_code != 200

    await asyncio.gather(*(one(t, i) for i in range(per_device) for t in tokens))
    return {"sends": per_device * len(tokens), "failed": failed, "seconds": round(time.perf_counter() - began, 1)}


async def _soak(
    gw: servers.Server,
    devices: int,
    rate: float,
    seconds: float,
    sample_every: float,
    listeners: int,
    warmup_sends: int,
) -> dict[str, Any]:
    tokens = gateway_api.valid_tokens(devices)
    counts: dict[str, int] = {"ws_opened": 0, "ws_frames": 0, "ws_errors": 0, "http_errors": 0}
    async with gateway_api.api_client(gw) as client:
        pairing = await gateway_api.pair_devices(client, tokens)
        probe = await client.post("/messages", json={"token": tokens[0], "to": tokens[1 % devices], "text": "probe"})
        check = await client.post("/validate/phone", json={"token": tokens[0], "phone": tokens[0]})
        have = {"send": probe.status_code != 404, "validate": check.status_code != 404}
        warmup = await _fill_sent_logs(client, tokens, warmup_sends) if have["send"] and warmup_sends else {}
        stop = asyncio.Event()
        ws_tasks = [
            asyncio.create_task(
                _listener(gw.port, "" if k % 4 == 0 else f"&tokens={tokens[k % devices]}", stop, counts)
            )
            for k in range(listeners)
        ]
        samples: list[tuple[float, float]] = []
        t0 = time.perf_counter()

        async def sampler() -> None:
            while not stop.is_set():
                samples.append((time.perf_counter() - t0, gw.rss_mb()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), sample_every)

        sampling = asyncio.create_task(sampler())
        await _traffic(client, tokens, rate, seconds, have, counts)
        samples.append((time.perf_counter() - t0, gw.rss_mb()))
        stop.set()
        await asyncio.gather(sampling, *ws_tasks, return_exceptions=True)
        connected, _ = await gateway_api.count_connected(client)
    return {
        "pairing": pairing,
        "warmup": warmup,
        "samples": samples,
        "counts": counts,
        "routes": have,
        "connected_at_end": connected,
        "elapsed_s": round(time.perf_counter() - t0, 1),
    }


def run(
    minutes: float = 10,
    devices: int = 50,
    rate: float = 100,
    sample_every: float = 10,
    listeners: int = 12,
    warmup_sends: int = SANDBOX_SENT_LOG,
) -> dict[str, Any]:
    servers.raise_nofile()
    loadgen.use_uvloop()
    with servers.workdir("soak") as wd:
        gw = servers.gateway(wd / "data", SANDBOX_RECONNECT_MS="300")
        with servers.running(gw):
            out = asyncio.run(_soak(gw, devices, rate, minutes * 60, sample_every, listeners, warmup_sends))
    samples = out.pop("samples")
    # Warm-up: the first fifth (at least one sample) fills caches, pools and allocator arenas.
    skip = max(1, len(samples) // 5)
    steady = samples[skip:] if len(samples) - skip >= 2 else samples
    slope_all = stats.slope_per_minute(samples)
    slope = stats.slope_per_minute(steady)
    growth = slope > GROWTH_MB_PER_MIN
    return {
        "method": f"{rate:g} req/s mixed (send, validate, 2x incoming) over {devices} devices, device drop every "
        f"5 s, {listeners} WebSocket listeners reopened every 5-20 s; RSS from /proc every "
        f"{sample_every:g} s, after a warm-up that fills the sandbox's per-device log of "
        f"{SANDBOX_SENT_LOG} sent messages; slope = least squares after the first fifth of the samples",
        "minutes": minutes,
        **out,
        "rss_mb_samples": [(round(t, 1), round(v, 1)) for t, v in samples],
        "rss_mb": {
            "first": round(samples[0][1], 1),
            "last": round(samples[-1][1], 1),
            "max": round(max(v for _, v in samples), 1),
        },
        "slope_mb_per_min": round(slope, 3),
        "slope_mb_per_min_incl_warmup": round(slope_all, 3),
        "growth_trend": growth,
        "targets": {
            "soak_rss_slope_mb_per_min": {
                "value": round(slope, 3),
                "target": f"<= {GROWTH_MB_PER_MIN} (no growth)",
                "verdict": "MISS" if growth else "PASS",
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--warmup-sends", type=int, default=SANDBOX_SENT_LOG, help="per device, before sampling")
    args = parser.parse_args()
    result = run(args.minutes, args.devices, args.rate, args.sample_every, warmup_sends=args.warmup_sends)
    print(f"  RSS samples (s, MiB): {result['rss_mb_samples']}")
    print(f"  counts: {result['counts']}")
    print(
        f"  slope {result['slope_mb_per_min']} MiB/min after warm-up "
        f"({result['slope_mb_per_min_incl_warmup']} incl. warm-up): "
        f"{'GROWTH TREND' if result['growth_trend'] else 'no growth trend'}"
    )
    print(f"wrote {report.write_result('soak', result)}")


if __name__ == "__main__":
    main()
