"""Media: big bodies in flat memory, and sending one upload to many recipients fast.

Starts the gateway (``python -m gateway``, sandbox) as a subprocess and, while a
thread samples its RSS (``VmRSS`` every 20 ms):

1. uploads 50 MB as ``multipart/form-data`` to ``POST /media`` (streamed from a
   generator: the client holds one chunk) — target: RSS growth < 20 MB;
2. sends a 50 MB file by ``media.url`` (served by a local HTTP server; the gateway runs with
   ``MEDIA_FETCH_ALLOW_PRIVATE=true`` to reach it) — target: RSS growth < 20 MB;
3. uploads a 1 MB JPEG once and sends it by ``media.id`` to 100 recipients, one request at a
   time — targets: ≥ 100 sends/s and p99 < 50 ms — and again with ``--concurrency`` in flight
   (reported: one device's sends leave in request order, so more in flight only wait in line);
4. receives distinct 1 MB JPEGs on the sandbox at ``--incoming-rate``/s for ``--incoming-seconds``
   (``POST /sandbox/devices/{token}/incoming``) with a webhook receiver in this process — targets:
   every event arrives with a stored media object, p99 from the simulated message to its webhook
   < 200 ms; a sample of the signed URLs is fetched without a key and checked by sha256.

    python -m bench.media [--mb 50] [--recipients 100] [--concurrency 10]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/ first on sys.path would shadow the stdlib `http`
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _here]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import http.server
import io
import random
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from bench import report, servers
from bench.csv_export import RssSampler

TOKEN = "60123456789"
CHUNK = 1 << 16


def _jpeg(nbytes: int) -> bytes:
    """A real JPEG of about ``nbytes`` (random pixels barely compress)."""
    from PIL import Image

    side = int((nbytes / 1.1) ** 0.5)
    img = Image.frombytes("RGB", (side, side), random.Random(7).randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _multipart(size: int, boundary: str) -> Iterator[bytes]:
    yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n'.encode()
    head = b"%PDF-1.4\n"
    yield head
    block = b"\0" * CHUNK
    left = size - len(head)
    while left > 0:
        yield block[: min(CHUNK, left)]
        left -= CHUNK
    yield f"\r\n--{boundary}--\r\n".encode()


class _Big(http.server.BaseHTTPRequestHandler):
    size = 0

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        head = b"%PDF-1.4\n"
        self.wfile.write(head)
        block = b"\0" * CHUNK
        left = self.size - len(head)
        while left > 0:
            self.wfile.write(block[: min(CHUNK, left)])
            left -= CHUNK

    def log_message(self, *args: Any) -> None:
        pass


def _measure(gw: servers.Server, action: Any) -> tuple[float, float, Any]:
    """(idle baseline MB, peak growth MB, action's result) with RSS sampled during ``action``."""
    time.sleep(0.3)
    baseline = gw.rss_mb()
    sampler = RssSampler(gw.pid)
    sampler.start()
    try:
        result = action()
    finally:
        sampler.halt.set()
        sampler.join()
    return baseline, sampler.peak - baseline, result


def _pair(client: httpx.Client) -> None:
    assert client.post("/devices", json={"token": TOKEN}).status_code == 200
    assert client.post(f"/sandbox/devices/{TOKEN}/scan").status_code == 200
    deadline = time.monotonic() + 10
    while client.get(f"/devices/{TOKEN}").json()["data"]["status"] != "connected":
        if time.monotonic() > deadline:
            raise TimeoutError("device did not connect")
        time.sleep(0.05)


async def _fan_out(base: str, media_id: str, recipients: int, concurrency: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    failures = 0
    queue = [f"6019{i:07d}" for i in range(recipients)]
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": servers.API_KEY}, timeout=30) as client:
        # warm-up: the first send prepares the upload (thumbnail) once
        r = await client.post("/messages", json={"token": TOKEN, "to": "60190000000", "media": {"id": media_id}})
        assert r.status_code == 200, r.text

        async def worker() -> None:
            nonlocal failures
            while queue:
                to = queue.pop()
                began = time.perf_counter()
                r = await client.post("/messages", json={"token": TOKEN, "to": to, "media": {"id": media_id}})
                latencies.append((time.perf_counter() - began) * 1000)
                failures += r.status_code != 200

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, elapsed, failures


class _Hooks:
    """A webhook receiver on 127.0.0.1: arrival time of each message.received, by message id."""

    def __init__(self) -> None:
        self.arrived: dict[str, tuple[float, dict[str, Any]]] = {}
        self.wall: dict[str, tuple[float, str]] = {}  # arrival (unix s) and the event's own timestamp
        self.server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def stop(self) -> None:
        """Close the server and its connections, and let their handlers end on the closed stream. Never
        cancelled: on Python 3.11 a cancelled handler is logged as an 'Exception in callback'."""
        if self.server is not None:
            self.server.close()
        for writer in self._handlers.values():
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, servers.HOST, 0)
        return f"http://{servers.HOST}:{self.server.sockets[0].getsockname()[1]}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import json

        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        task.add_done_callback(lambda t: self._handlers.pop(t, None))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = json.loads(await reader.readexactly(length))
                if body.get("event") == "message.received":
                    self.arrived[body["data"]["id"]] = (time.perf_counter(), body["data"])
                    self.wall[body["data"]["id"]] = (time.time(), body["timestamp"])
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def _incoming(base: str, hooks: _Hooks, rate: int, seconds: float) -> dict[str, Any]:
    import base64
    import hashlib

    image = _jpeg(1_000_000)
    sent: dict[str, tuple[float, str]] = {}
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": servers.API_KEY}, timeout=60) as client:

        async def one(i: int) -> None:
            data = image + i.to_bytes(8, "big")  # distinct bytes (after the JPEG's end): stored apart
            body = {"from": "60198765432", "media": {"data": base64.b64encode(data).decode(), "mimetype": "image/jpeg"}}
            began = time.perf_counter()
            r = await client.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)
            if r.status_code == 200:
                sent[r.json()["data"]["id"]] = (began, hashlib.sha256(data).hexdigest())

        total = int(rate * seconds)
        started = time.perf_counter()
        tasks = []
        for i in range(total):  # open loop: one request every 1/rate s, whatever the answers
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + 30
        while len(hooks.arrived.keys() & sent.keys()) < len(sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        latencies = sorted((hooks.arrived[k][0] - sent[k][0]) * 1000 for k in sent if k in hooks.arrived)
        stored = [k for k in sent if k in hooks.arrived and hooks.arrived[k][1]["media"]["status"] == "stored"]
        checked = 0
        async with httpx.AsyncClient(timeout=30) as anon:  # no key: the signed links themselves
            for k in stored[:: max(1, len(stored) // 10)]:
                media = hooks.arrived[k][1]["media"]
                got = await anon.get(media["url"])
                assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sent[k][1], media
                checked += 1
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan")
    import datetime as dt

    recorded_to_hook = sorted(
        (arrived - dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()) * 1000
        for arrived, stamp in hooks.wall.values()
    )
    return {
        "recorded_to_webhook_p50_ms": round(statistics.median(recorded_to_hook), 1) if recorded_to_hook else None,
        "offered": total,
        "rate_per_s": rate,
        "accepted": len(sent),
        "delivered": len(latencies),
        "stored": len(stored),
        "urls_checked": checked,
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(p99, 1),
    }


def run(
    mb: int = 50,
    recipients: int = 100,
    concurrency: int = 10,
    incoming_rate: int = 50,
    incoming_seconds: float = 4.0,
) -> dict[str, Any]:
    size = mb * 1024 * 1024
    out: dict[str, Any] = {
        "method": "gateway as `python -m gateway` (sandbox, MEDIA_FETCH_ALLOW_PRIVATE=true); server RSS from "
        "/proc/<pid>/status VmRSS every 20 ms, growth = peak during the request - idle baseline; the upload is "
        "streamed from a generator (httpx, one 64 KiB chunk at a time), the URL body from a local "
        "http.server; the fan-out sends one 1 MB JPEG upload by id, one request at a time and with "
        f"{concurrency} in flight (httpx; one warm-up send first)",
    }
    targets: dict[str, Any] = {}
    with servers.workdir("media") as wd:
        gw_server = servers.gateway(wd / "data", MEDIA_FETCH_ALLOW_PRIVATE="true", MEDIA_MAX_BYTES=str(64 << 20))
        with (
            servers.running(gw_server) as gw,
            httpx.Client(base_url=gw.base, headers={"X-API-Key": servers.API_KEY}, timeout=120) as client,
        ):
            _pair(client)
            client.post("/media", files={"file": ("warm.jpg", _jpeg(10_000), "image/jpeg")})  # imports, libmagic

            boundary = "benchboundary"

            def upload() -> httpx.Response:
                return client.post(
                    "/media",
                    content=_multipart(size, boundary),
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                )

            began = time.perf_counter()
            base_up, growth_up, r = _measure(gw, upload)
            up_s = time.perf_counter() - began
            assert r.status_code == 200, r.text
            out["upload"] = {"mb": mb, "rss_baseline_mb": round(base_up, 1), "rss_growth_mb": round(growth_up, 1)}
            print(f"  {mb} MB multipart upload: {up_s:.1f} s, RSS +{growth_up:.1f} MiB", flush=True)
            targets["upload_50mb_rss_growth_mb"] = {
                "value": round(growth_up, 1),
                "target": "< 20",
                "verdict": report.verdict(growth_up, 20),
            }

            _Big.size = size
            httpd = http.server.ThreadingHTTPServer((servers.HOST, 0), _Big)
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            url = f"http://{servers.HOST}:{httpd.server_address[1]}/big.pdf"

            def by_url() -> httpx.Response:
                body = {"token": TOKEN, "to": "60198765432", "media": {"url": url}}
                return client.post("/messages", json=body)

            try:
                _, growth_url, r = _measure(gw, by_url)
            finally:
                httpd.shutdown()
            ok = r.status_code == 200
            out["url_fetch"] = {"mb": mb, "status": r.status_code, "rss_growth_mb": round(growth_url, 1)}
            if not ok:
                out["url_fetch"]["error"] = r.text[:300]
            print(f"  {mb} MB URL fetch + send: HTTP {r.status_code}, RSS +{growth_url:.1f} MiB", flush=True)
            targets["url_fetch_50mb_rss_growth_mb"] = {
                "value": round(growth_url, 1) if ok else None,
                "target": "< 20",
                "verdict": report.verdict(growth_url, 20) if ok else "FAILED",
            }

            r = client.post("/media", files={"file": ("photo.jpg", _jpeg(1_000_000), "image/jpeg")})
            media_id = r.json()["data"]["id"]
            runs = {c: asyncio.run(_fan_out(gw.base, media_id, recipients, c)) for c in sorted({1, concurrency})}
    out["fan_out"] = []
    for conc, (latencies, elapsed, failures) in runs.items():
        rate = len(latencies) / elapsed if elapsed else 0.0
        p50 = statistics.median(latencies)
        p99 = sorted(latencies)[max(0, int(len(latencies) * 0.99) - 1)]
        out["fan_out"].append(
            {
                "recipients": recipients,
                "concurrency": conc,
                "failures": failures,
                "sends_per_s": round(rate, 1),
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
            }
        )
        print(
            f"  1 MB image by id to {recipients}, {conc} in flight: {rate:.0f} sends/s, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            flush=True,
        )
        if conc == 1:  # the target: one device's sends leave in request order, so more in flight only queue
            targets["send_by_id_per_s"] = {
                "value": round(rate, 1),
                "target": ">= 100",
                "verdict": report.verdict(rate, 100, True),
            }
            targets["send_by_id_p99_ms"] = {
                "value": round(p99, 1),
                "target": "< 50",
                "verdict": report.verdict(p99, 50),
            }
    out["incoming"] = asyncio.run(_incoming_run(incoming_rate, incoming_seconds))
    inc = out["incoming"]
    print(
        f"  incoming 1 MB images at {incoming_rate}/s: {inc['delivered']}/{inc['offered']} webhooks, "
        f"{inc['stored']} stored, p50 {inc['p50_ms']} ms, p99 {inc['p99_ms']} ms, {inc['urls_checked']} URLs fetched",
        flush=True,
    )
    complete = inc["delivered"] == inc["offered"] == inc["stored"]
    targets["incoming_all_delivered_and_stored"] = {
        "value": f"{inc['stored']}/{inc['offered']}",
        "target": "all",
        "verdict": "PASS" if complete else "MISS",
    }
    targets["incoming_event_to_webhook_p99_ms"] = {
        "value": inc["p99_ms"],
        "target": "< 200",
        "verdict": report.verdict(inc["p99_ms"], 200) if complete else "MISS",
    }
    out["targets"] = targets
    return out


async def _incoming_run(rate: int, seconds: float) -> dict[str, Any]:
    hooks = _Hooks()
    url = await hooks.start()
    try:
        with servers.workdir("media-in") as wd:
            gw_server = servers.gateway(wd / "data", WEBHOOK_URL=url)
            with servers.running(gw_server) as gw:
                with httpx.Client(base_url=gw.base, headers={"X-API-Key": servers.API_KEY}, timeout=30) as client:
                    _pair(client)
                return await _incoming(gw.base, hooks, rate, seconds)
    finally:
        await hooks.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--recipients", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--incoming-rate", type=int, default=50)
    parser.add_argument("--incoming-seconds", type=float, default=4.0)
    args = parser.parse_args()
    data = run(args.mb, args.recipients, args.concurrency, args.incoming_rate, args.incoming_seconds)
    print(f"  → {report.write_result('media', data)}")


if __name__ == "__main__":
    main()
