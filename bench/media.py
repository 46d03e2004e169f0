"""Media: big bodies in flat memory, and sending one upload to many recipients fast.

Starts the gateway (``python -m gateway``, sandbox) as a subprocess and, while a
thread samples its RSS (``VmRSS`` every 20 ms):

1. uploads 50 MB as ``multipart/form-data`` to ``POST /media`` (streamed from a
   generator: the client holds one chunk) — target: RSS growth < 20 MB;
2. sends a 50 MB file by ``media.url`` (served by a local HTTP server; the gateway runs with
   ``MEDIA_FETCH_ALLOW_PRIVATE=true`` to reach it) — target: RSS growth < 20 MB;
3. uploads a 1 MB JPEG once and sends it by ``media.id`` to 100 recipients, one request at a
   time — targets: ≥ 100 sends/s and p99 < 50 ms — and again with ``--concurrency`` in flight
   (reported: one device's sends leave in request order, so more in flight only wait in line).

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


def run(mb: int = 50, recipients: int = 100, concurrency: int = 10) -> dict[str, Any]:
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
            print(f"  50 MB multipart upload: {up_s:.1f} s, RSS +{growth_up:.1f} MiB", flush=True)
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
            print(f"  50 MB URL fetch + send: HTTP {r.status_code}, RSS +{growth_url:.1f} MiB", flush=True)
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
    out["targets"] = targets
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--recipients", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    data = run(args.mb, args.recipients, args.concurrency)
    print(f"  → {report.write_result('media', data)}")


if __name__ == "__main__":
    main()
