"""``python -m bench.send_cost``: what one ``POST /messages`` costs the gateway in CPU, in-process.

The HTTP benchmark (``bench.http``) measures throughput through uvicorn and the kernel against a bare
Starlette app, and moves by up to 2x with whatever else runs on the host. This one calls the ASGI app
directly (the real app and lifespan, sandbox driver, no socket), ``--requests`` sends one after another
to one device, then waits until their receipts (two per send, from the simulated WhatsApp) are stored,
and divides the process's CPU time (every thread: the event loop and the store's writer) by the sends.
Run with the message store on (the default) and off (``MESSAGE_RETENTION_DAYS=0``), interleaved: the
difference is what storing a sent message and its two receipts costs. Reported, no target: it is the
breakdown behind README's HTTP figure.

    python -m bench.send_cost [--requests 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import loadgen, report
from tests.support.asgi import lifespan
from tests.support.settings import make_settings

KEY = "bench-send-cost-key-0123456789"
TOKEN, TO = "60123456789", "60198765432"


async def _call(app: Any, state: dict[str, Any], method: str, path: str, body: bytes = b"") -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {KEY}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 4010),
        "state": dict(state),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def one(requests: int, store_messages: bool) -> float:
    """CPU microseconds per send (its receipts included)."""
    from gateway.app import create_app
    from gateway.logs import configure

    configure("warning")
    with tempfile.TemporaryDirectory(prefix="wag-bench-send-") as tmp:
        settings = replace(make_settings(Path(tmp)), api_key=KEY, typing_delay_ms=0, log_level="warning")
        if not store_messages:
            settings = replace(settings, message_retention_days=0)
        app = create_app(settings)
        async with lifespan(app) as state:
            assert await _call(app, state, "POST", "/devices", json.dumps({"token": TOKEN}).encode()) == 200
            assert await _call(app, state, "POST", f"/sandbox/devices/{TOKEN}/scan") == 200
            body = json.dumps({"token": TOKEN, "to": TO, "text": "hello from the benchmark"}).encode()
            for _ in range(min(2000, requests)):  # warm: caches, the first commits
                await _call(app, state, "POST", "/messages", body)
            rt = app.state.runtime
            began = time.process_time()
            for _ in range(requests):
                assert await _call(app, state, "POST", "/messages", body) == 200
            if store_messages:  # until every send's read receipt is stored (bounded)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    page = await rt.store.list_messages(TOKEN, limit=1)
                    if page and page[0].status == "read":
                        break
                    await asyncio.sleep(0.01)
            else:  # nothing to poll: the receipts are due within twice the delay
                await asyncio.sleep(3 * settings.sandbox_receipt_delay_ms / 1000)
            return (time.process_time() - began) / requests * 1e6


def run(requests: int, rounds: int) -> dict[str, Any]:
    loadgen.use_uvloop()
    samples: dict[str, list[float]] = {"with the message store": [], "without it": []}
    for _ in range(rounds):
        samples["with the message store"].append(asyncio.run(one(requests, True)))
        samples["without it"].append(asyncio.run(one(requests, False)))
    med = {k: round(statistics.median(v), 1) for k, v in samples.items()}
    for k, v in samples.items():
        print(f"  {k:24} {med[k]:7.1f} µs CPU per send (rounds: {', '.join(f'{x:.1f}' for x in v)})", flush=True)
    cost = round(med["with the message store"] - med["without it"], 1)
    return {
        "params": {"requests": requests, "rounds": rounds},
        "us_per_send": med,
        "rounds": samples,
        "targets": {
            "cpu_us_per_send_stored": {
                "value": med["with the message store"],
                "target": "(reported)",
                "verdict": "INFO",
            },
            "cpu_us_per_send_not_stored": {"value": med["without it"], "target": "(reported)", "verdict": "INFO"},
            "cpu_us_storing_a_send_and_its_receipts": {"value": cost, "target": "(reported)", "verdict": "INFO"},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    out = run(args.requests, args.rounds)
    report.finish("send_cost", out)


if __name__ == "__main__":
    main()
