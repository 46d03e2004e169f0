"""Event fan-out: incoming messages to WebSocket listeners, latency and loss.

1,000 sandbox devices are paired; each has one listener
(``/ws?apiKey=…&tokens=<token>``) and 10 more listeners take everything. A
constant-rate driver posts ``POST /sandbox/devices/{token}/incoming`` at
1,000/s spread round-robin over the devices; each message's text carries its
sequence number and ``time.time()`` taken right before the request is written,
and the listener computes latency on receipt (same machine, same clock).
Listeners run in separate processes (``websockets`` client, multiprocessing)
so the client side is not the bottleneck. No frame may be lost: every
accepted message must reach its device's listener and every catch-all
listener exactly once.

    python -m bench.fanout [--devices 1000] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import time
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import orjson

from bench import gateway_api, loadgen, report, servers, stats

SENDER = "60198765432"


# --- listener processes ------------------------------------------------------------


def _listener_main(
    port: int, tokens: list[str], wildcards: int, counter: Synchronized, pipe: Connection, max_seconds: float
) -> None:
    servers.raise_nofile()
    loadgen.use_uvloop()
    asyncio.run(_listen(port, tokens, wildcards, counter, pipe, max_seconds))


async def _listen(
    port: int, tokens: list[str], wildcards: int, counter: Synchronized, pipe: Connection, max_seconds: float
) -> None:
    from websockets.asyncio.client import connect

    base = f"ws://{servers.HOST}:{port}/ws?apiKey={servers.API_KEY}"
    names = [*tokens, *(f"*{i}" for i in range(wildcards))]
    seqs: dict[str, list[int]] = {n: [] for n in names}
    lats: dict[str, list[float]] = {n: [] for n in names}
    ready = asyncio.Event()
    connected = 0
    stop = asyncio.Event()
    sem = asyncio.Semaphore(50)
    errors: list[str] = []

    async def one(name: str) -> None:
        nonlocal connected
        url = base if name.startswith("*") else f"{base}&tokens={name}"
        try:
            async with sem:
                ws = await connect(url, max_queue=None, open_timeout=30, ping_interval=None)
                first = orjson.loads(await ws.recv())
                if first.get("event") != "connected":
                    raise RuntimeError(f"first frame {first}")
            connected += 1
            if connected == len(names):
                ready.set()
            my_seqs, my_lats = seqs[name], lats[name]
            async with ws:
                while not stop.is_set():
                    try:
                        raw = await ws.recv()
                    except Exception:
                        return
                    now = time.time()
                    frame = orjson.loads(raw)
                    if frame.get("event") != "message":
                        continue
                    _, seq, sent = frame["data"]["text"].split(" ")
                    my_seqs.append(int(seq))
                    my_lats.append(now - float(sent))
                    with counter.get_lock():
                        counter.value += 1
        except Exception as exc:
            errors.append(f"{name}: {exc!r}")
            connected += 1
            if connected == len(names):
                ready.set()

    tasks = [asyncio.create_task(one(n)) for n in names]
    loop = asyncio.get_running_loop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ready.wait(), 120)
    pipe.send(("ready", len(names) - len(errors), errors[:5]))
    # Wait (bounded) for the parent's "stop"; the pipe is read in a thread.
    await loop.run_in_executor(None, pipe.poll, max_seconds)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(("done", seqs, lats, errors[:5]))


# --- the run -------------------------------------------------------------------------


async def _drive(port: int, tokens: list[str], rate: float, seconds: float) -> tuple[loadgen.RateRun, set[int]]:
    accepted: set[int] = set()
    n = len(tokens)
    auth = {"X-API-Key": servers.API_KEY}

    def request(i: int) -> bytes:
        body = orjson.dumps({"from": SENDER, "name": "Bench", "text": f"fan {i} {time.time():.6f}"})
        return loadgen.http_request("POST", f"/sandbox/devices/{tokens[i % n]}/incoming", body, auth)

    def on_response(i: int, status: int, _body: bytes) -> None:
        if status == 200:
            accepted.add(i)

    run = await loadgen.constant_rate(port, request, rate, seconds, connections=32, on_response=on_response)
    return run, accepted


async def _pair(server: servers.Server, tokens: list[str]) -> dict[str, Any]:
    async with gateway_api.api_client(server) as client:
        return await gateway_api.pair_devices(client, tokens)


def run(
    devices: int = 1000,
    wildcards: int = 10,
    rate: float = 1000,
    seconds: float = 10,
    procs: int = 2,
    drain_seconds: float = 60,
) -> dict[str, Any]:
    servers.raise_nofile()
    loadgen.use_uvloop()
    tokens = gateway_api.valid_tokens(devices)
    ctx = mp.get_context("spawn")
    with servers.workdir("fanout") as wd:
        gw = servers.gateway(wd / "data")
        with servers.running(gw):
            pairing = asyncio.run(_pair(gw, tokens))
            print(f"  paired {devices} devices in {pairing['seconds']} s ({pairing['failed']} failed)", flush=True)
            rss_paired = gw.rss_mb()
            # Per-device listeners split over ``procs`` processes; catch-all ones in their own.
            groups: list[tuple[list[str], int]] = [(tokens[k::procs], 0) for k in range(procs)]
            groups.append(([], wildcards))
            counter: Synchronized = ctx.Value("q", 0)  # type: ignore[assignment]
            children = []
            max_life = seconds + drain_seconds + 180
            for toks, wild in groups:
                parent_end, child_end = ctx.Pipe()
                p = ctx.Process(target=_listener_main, args=(gw.port, toks, wild, counter, child_end, max_life))
                p.start()
                children.append((p, parent_end))
            ready = 0
            connect_errors: list[str] = []
            began = time.perf_counter()
            for _p, pipe in children:
                if pipe.poll(150):
                    _, n_ok, errs = pipe.recv()
                    ready += n_ok
                    connect_errors += errs
            listen_setup = time.perf_counter() - began
            print(f"  {ready} listeners connected in {listen_setup:.1f} s", flush=True)
            rss_listening = gw.rss_mb()
            cpu0 = gw.cpu_seconds()
            drive, accepted = asyncio.run(_drive(gw.port, tokens, rate, seconds))
            cpu_drive = gw.cpu_seconds() - cpu0
            expected = len(accepted) * (1 + wildcards)
            deadline = time.perf_counter() + drain_seconds
            while counter.value < expected and time.perf_counter() < deadline:
                time.sleep(0.05)
            rss_after = gw.rss_mb()
            results = []
            for p, pipe in children:
                pipe.send("stop")
                if pipe.poll(60):
                    results.append(pipe.recv())
                p.join(10)
                if p.is_alive():
                    p.kill()
    return _judge(
        tokens,
        wildcards,
        accepted,
        drive,
        results,
        {
            "pairing": pairing,
            "listeners_connected": ready,
            "listener_setup_s": round(listen_setup, 2),
            "connect_errors": connect_errors,
            "gateway_rss_mb": {
                "paired": round(rss_paired, 1),
                "listening": round(rss_listening, 1),
                "after": round(rss_after, 1),
            },
            "gateway_cpu_pct_while_driving": round(100 * cpu_drive / drive.elapsed, 1) if drive.elapsed else 0,
            "config": {
                "devices": devices,
                "wildcard_listeners": wildcards,
                "rate": rate,
                "seconds": seconds,
                "listener_processes": procs + 1,
            },
        },
    )


def _judge(
    tokens: list[str],
    wildcards: int,
    accepted: set[int],
    drive: loadgen.RateRun,
    results: list[Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    n = len(tokens)
    per_device_lat: list[float] = []
    wildcard_lat: list[float] = []
    lost = dupes = 0
    seen_tokens = set()
    index = {t: k for k, t in enumerate(tokens)}
    by_device: dict[int, set[int]] = {}
    for i in accepted:
        by_device.setdefault(i % n, set()).add(i)
    for _, seqs, lats, _errs in results:
        for name, got in seqs.items():
            if name.startswith("*"):
                want = accepted
                wildcard_lat.extend(lats[name])
            else:
                seen_tokens.add(name)
                want = by_device.get(index[name], set())
                per_device_lat.extend(lats[name])
            got_set = set(got)
            lost += len(want - got_set)
            dupes += len(got) - len(got_set)
    lost += sum(1 for i in accepted if tokens[i % n] not in seen_tokens)  # listeners that never reported
    all_lat = per_device_lat + wildcard_lat
    summary = stats.summarize_ms(all_lat)
    p99 = summary.get("p99", 0.0)
    return {
        "method": "constant-rate POST /sandbox/devices/{token}/incoming (open loop, raw sockets); latency = "
        "time.time() on frame receipt minus time.time() embedded in the text right before the "
        "request was written; websockets clients in separate processes (permessage-deflate "
        "offered, as browsers do)",
        **extra,
        "driver": drive.report(),
        "messages_accepted": len(accepted),
        "frames_expected": len(accepted) * (1 + wildcards),
        "frames_lost": lost,
        "frames_duplicated": dupes,
        "latency_ms": {
            "all": summary,
            "per_device_listeners": stats.summarize_ms(per_device_lat),
            "catch_all_listeners": stats.summarize_ms(wildcard_lat),
        },
        "targets": {
            "fanout_p99_ms": {"value": p99, "target": "< 25", "verdict": report.verdict(p99, 25)},
            "fanout_frames_lost": {
                "value": lost,
                "target": "0",
                "verdict": "PASS" if lost == 0 and len(accepted) > 0 else "MISS",
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--wildcards", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--procs", type=int, default=2, help="processes for the per-device listeners")
    args = parser.parse_args()
    result = run(args.devices, args.wildcards, args.rate, args.seconds, args.procs)
    lat = result["latency_ms"]["all"]
    print(
        f"  accepted {result['messages_accepted']}, frames {result['frames_expected']}, "
        f"lost {result['frames_lost']}, dup {result['frames_duplicated']}; "
        f"p50 {lat.get('p50')} ms p99 {lat.get('p99')} ms max {lat.get('max')} ms"
    )
    for name, t in result["targets"].items():
        print(f"  {name}: {t['value']} (target {t['target']}) {t['verdict']}")
    print(f"wrote {report.write_result('fanout', result)}")


if __name__ == "__main__":
    main()
