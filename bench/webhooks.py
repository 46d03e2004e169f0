"""Webhook delivery: signed deliveries per second, and event → first attempt latency.

The receiver is a raw asyncio HTTP/1.1 server (uvloop) in its own process on
127.0.0.1 that answers 204 at once, records each arrival (``time.time()``) and
checks the signatures of every 50th request. The gateway side is the real
:class:`gateway.webhooks.dispatcher.Dispatcher` on the real ``gateway.db`` store (uvloop,
WEBHOOK_SECRET set, so every request is signed twice), driven through the
store + wake, exactly as the event pump does it:

1. **throughput** — ``--backlog`` rows (default 20,000) are already pending
   when the dispatcher starts; deliveries per second until all are stored as
   delivered;
2. **latency at rate** — events are enqueued at ``--rate`` per second (default
   2,000) for ``--seconds`` (default 5), each its own job on the writer followed
   by ``wake()``; latency = arrival at the receiver − ``time.time()`` taken
   just before the event's transaction (same machine, same clock);
3. **through the pump** (``--pump-rate``, default 300/s, 0 = skip) — a real
   ``python -m gateway`` with a sandbox device; incoming messages are posted at
   that rate and latency is measured from the event's own ``timestamp`` (ms
   precision) to arrival.

Targets: ≥ 2,000 deliveries/s, p99 < 50 ms at 2,000/s. Writes
``bench/results/webhooks.json``.

    python -m bench.webhooks [--backlog 20000] [--rate 2000] [--seconds 5] [--pump-rate 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson

from bench import gateway_api, loadgen, report, servers, stats

SECRET = "bench-webhook-secret"
TOKEN = "60123456789"


# --- the receiver process ----------------------------------------------------------------


class _Receiver(asyncio.Protocol):
    """HTTP/1.1 keep-alive; answers 204; records (arrival, body-derived t0)."""

    arrivals: ClassVar[list[tuple[float, float]]] = []
    bad_signatures = 0
    checked = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length, sig = 0, b""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"x-webhook-signature":
                    sig = value.strip()
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            now = time.time()
            self.t.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            _Receiver.arrivals.append((now, _t0(body)))
            if len(_Receiver.arrivals) % 50 == 1:
                _Receiver.checked += 1
                expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest().encode()
                if not hmac.compare_digest(sig, expected):
                    _Receiver.bad_signatures += 1


def _t0(body: bytes) -> float:
    doc = orjson.loads(body)
    data = doc.get("data") or {}
    if isinstance(data, dict) and "t0" in data:
        return float(data["t0"])
    return datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00")).timestamp()


def receiver_main(port: int, dump: Path) -> None:
    loadgen.use_uvloop()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Receiver, servers.HOST, port, backlog=1024)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with asyncio.timeout(900):  # never outlive a forgotten parent
            await stop.wait()
        server.close()
        dump.write_bytes(
            orjson.dumps(
                {"arrivals": _Receiver.arrivals, "checked": _Receiver.checked, "bad": _Receiver.bad_signatures}
            )
        )

    asyncio.run(serve())


class ReceiverProcess:
    def __init__(self, workdir: Path) -> None:
        self.port = servers.free_port()
        self.dump = workdir / f"receiver-{self.port}.json"
        self.url = f"http://{servers.HOST}:{self.port}/hook"
        env = {**os.environ, "PYTHONPATH": str(servers.ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.webhooks", "--receiver", str(self.port), "--dump", str(self.dump)], env=env
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((servers.HOST, self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise TimeoutError("receiver did not start")

    def finish(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        data: dict[str, Any] = orjson.loads(self.dump.read_bytes())
        return data


# --- driving the dispatcher ----------------------------------------------------------------


def _body(i: int, t0: float) -> bytes:
    data = {
        "id": f"3EB0{i:016X}",
        "from": "60198765432",
        "fromName": "Bench",
        "chat": "60198765432@s.whatsapp.net",
        "isGroup": False,
        "type": "text",
        "text": f"message {i}",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "t0": t0,
    }
    return orjson.dumps(
        {"event": "message.received", "token": TOKEN, "data": data, "timestamp": "2026-01-01T00:00:00.000Z"}
    )


def _rows(url: str, start: int, n: int, t0: float) -> list[Any]:
    from gateway.store import NewDelivery

    return [
        NewDelivery(f"msg_{i}", "message.received", TOKEN, None, url, _body(i, t0), False, t0)
        for i in range(start, start + n)
    ]


async def _pending(store: Any) -> int:
    counts, _ = await store.outbox_stats()
    return int(counts.get("pending", 0))


async def throughput(workdir: Path, url: str, backlog: int) -> dict[str, Any]:
    from gateway.net import GuardedClient
    from gateway.settings import Settings
    from gateway.store import Store
    from gateway.webhooks.dispatcher import Dispatcher

    store = await Store.open(workdir / "tp")
    for start in range(0, backlog, 1000):
        await store.enqueue(_rows(url, start, min(1000, backlog - start), time.time()))
    settings = replace(Settings(), webhook_url=url, webhook_secret=SECRET)
    http = GuardedClient(limit=settings.webhook_concurrency + 64)  # as the composition root builds it
    dispatcher = Dispatcher(settings, store, http=http)
    began, cpu = time.perf_counter(), time.process_time()
    await dispatcher.start()
    async with asyncio.timeout(300):
        while await _pending(store):
            await asyncio.sleep(0.05)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    await dispatcher.stop()
    await http.close()
    await store.close()
    # CPU per delivery (this process: dispatcher, signing, HTTP, SQLite threads) is less
    # sensitive to other load on the machine than the wall-clock rate.
    return {
        "deliveries": backlog,
        "seconds": round(seconds, 3),
        "per_second": round(backlog / seconds, 1),
        "cpu_us_per_delivery": round(cpu / backlog * 1e6, 1),
        "per_second_per_busy_core": round(backlog / cpu, 1),
        "load_average": os.getloadavg(),
    }


async def at_rate(workdir: Path, url: str, rate: int, seconds: float) -> dict[str, Any]:
    from gateway.net import GuardedClient
    from gateway.settings import Settings
    from gateway.store import Store
    from gateway.webhooks.dispatcher import Dispatcher

    store = await Store.open(workdir / "rate")
    settings = replace(Settings(), webhook_url=url, webhook_secret=SECRET)
    http = GuardedClient(limit=settings.webhook_concurrency + 64)  # as the composition root builds it
    dispatcher = Dispatcher(settings, store, http=http)
    await dispatcher.start()
    total = int(rate * seconds)
    tick = 0.005  # enqueue in small steps, each event its own transaction + wake, like the pump
    began = time.perf_counter()
    sent = 0
    writes: set[asyncio.Task[None]] = set()

    async def event(i: int) -> None:
        await store.enqueue(_rows(url, i, 1, time.time()))  # one group-committed job, as a pump writes
        dispatcher.wake()

    # Events come from many devices' pumps at once: each is its own task, not awaited one by one
    # (which would cap the offered rate at one writer round trip per event).
    while sent < total and time.perf_counter() - began < seconds * 3:
        due = min(total, int((time.perf_counter() - began) * rate) + 1)
        while sent < due:
            task = asyncio.create_task(event(sent))
            writes.add(task)
            task.add_done_callback(writes.discard)
            sent += 1
        await asyncio.sleep(tick)
    await asyncio.gather(*writes)
    offered = sent / (time.perf_counter() - began)
    async with asyncio.timeout(120):
        while await _pending(store):
            await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - began
    await dispatcher.stop()
    await http.close()
    await store.close()
    return {"events": sent, "offered_per_second": round(offered, 1), "seconds": round(elapsed, 3)}


async def via_pump(workdir: Path, url: str, rate: int, seconds: float) -> dict[str, Any]:
    """A real gateway process: sandbox incoming messages → webhooks."""
    server = servers.gateway(workdir / "pump-data", WEBHOOK_URL=url, WEBHOOK_SECRET=SECRET)
    with servers.running(server):
        async with gateway_api.api_client(server) as client:
            await client.post("/devices", json={"token": TOKEN})
            await client.post(f"/sandbox/devices/{TOKEN}/scan")
            total, began, sent = int(rate * seconds), time.perf_counter(), 0
            tasks: set[asyncio.Task[Any]] = set()
            while sent < total and time.perf_counter() - began < seconds * 3:
                due = min(total, int((time.perf_counter() - began) * rate) + 1)
                while sent < due:
                    body = {"from": "60198765432", "name": "Bench", "text": f"pump {sent}"}
                    task = asyncio.create_task(client.post(f"/sandbox/devices/{TOKEN}/incoming", json=body))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    sent += 1
                await asyncio.sleep(0.005)
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks)
            offered = sent / (time.perf_counter() - began)

            async def pending() -> int:
                r = await client.get("/webhooks/deliveries?status=pending&limit=1")
                return len(r.json()["data"]["deliveries"])

            async with asyncio.timeout(120):
                while await pending():
                    await asyncio.sleep(0.1)
    return {"messages": sent, "offered_per_second": round(offered, 1)}


def latency(arrivals: list[tuple[float, float]]) -> dict[str, float]:
    return stats.summarize_ms(max(0.0, at - t0) for at, t0 in arrivals)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.logs import configure

    configure("warning")  # as the other benchmarks run the gateway: no line per delivery
    loadgen.use_uvloop()
    out: dict[str, Any] = {"params": vars(args)}
    with servers.workdir("webhooks") as wd:
        recv = ReceiverProcess(wd)
        try:
            out["throughput"] = asyncio.run(throughput(wd, recv.url, args.backlog))
        finally:
            got = recv.finish()
        out["throughput"]["received"] = len(got["arrivals"])
        out["throughput"]["signatures_checked"], out["throughput"]["bad_signatures"] = got["checked"], got["bad"]
        print(f"throughput: {out['throughput']}", flush=True)

        recv = ReceiverProcess(wd)
        try:
            out["at_rate"] = asyncio.run(at_rate(wd, recv.url, args.rate, args.seconds))
        finally:
            got = recv.finish()
        out["at_rate"]["received"] = len(got["arrivals"])
        out["at_rate"]["latency_ms"] = latency(got["arrivals"])
        print(f"at rate: {out['at_rate']}", flush=True)

        if args.pump_rate:
            recv = ReceiverProcess(wd)
            try:
                out["via_pump"] = asyncio.run(via_pump(wd, recv.url, args.pump_rate, args.seconds))
            finally:
                got = recv.finish()
            arrivals = [a for a in got["arrivals"]]
            out["via_pump"]["received"] = len(arrivals)
            out["via_pump"]["latency_ms"] = latency(arrivals)
            print(f"via pump: {out['via_pump']}", flush=True)

    tp = out["throughput"]["per_second"]
    p99 = out["at_rate"]["latency_ms"].get("p99", 0.0)
    out["targets"] = {
        "deliveries_per_second": {"value": tp, "target": ">= 2000", "verdict": report.verdict(tp, 2000, True)},
        f"latency_p99_ms_at_{args.rate}_per_s": {
            "value": p99,
            "target": "< 50",
            "verdict": report.verdict(p99, 50),
            "offered_per_second": out["at_rate"]["offered_per_second"],
        },
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pump-rate", type=int, default=300)
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        receiver_main(args.receiver, args.dump or Path(tempfile.gettempdir()) / "receiver.json")
        return
    out = run(args)
    report.finish("webhooks", out)


if __name__ == "__main__":
    main()
