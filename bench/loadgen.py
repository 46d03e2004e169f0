"""An open-loop, constant-rate HTTP/1.1 load generator: requests leave on a fixed schedule whatever
the responses do, so a stall shows as latency instead of as fewer requests. Every loop is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.stats import summarize_ms
from tests.support.net import HOST


class _Conn:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def http_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class RateRun:
    """What a constant-rate run saw: latencies from the intended send time."""

    rate: float
    seconds: float
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # intended send → response, seconds
    service: list[float] = field(default_factory=list)  # actual send → response, seconds
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    elapsed: float = 0.0
    late_starts: int = 0  # requests that waited for a free connection

    def report(self) -> dict[str, Any]:
        ok = sum(n for s, n in self.statuses.items() if 200 <= s < 300)
        return {
            "target_rate": self.rate,
            "achieved_rate": round(len(self.latencies) / self.elapsed, 1) if self.elapsed else 0,
            "sent": self.sent,
            "completed": len(self.latencies),
            "ok": ok,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "waited_for_connection": self.late_starts,
            "latency_ms": summarize_ms(self.latencies),
            "service_ms": summarize_ms(self.service),
        }


async def constant_rate(
    port: int,
    make_request: Callable[[int], bytes],
    rate: float,
    seconds: float,
    connections: int = 32,
    on_response: Callable[[int, int, bytes], None] | None = None,
) -> RateRun:
    """Send ``rate`` requests/s for ``seconds`` over up to ``connections`` keep-alive
    connections, on a fixed schedule whatever the responses do (open loop, so a
    stall shows as latency instead of as fewer requests). ``make_request(i)`` is
    called right before request ``i`` is written."""
    run = RateRun(rate, seconds)
    total = max(1, int(rate * seconds))
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    conns = [await _Conn.open(port) for _ in range(connections)]
    for c in conns:
        pool.put_nowait(c)
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, intended: float) -> None:
        if pool.empty():
            run.late_starts += 1
        conn = await pool.get()
        sent = time.perf_counter()
        try:
            status, body = await asyncio.wait_for(conn.roundtrip(make_request(i)), 30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            run.errors += 1
            conn.close()
            with contextlib.suppress(OSError):
                fresh = await _Conn.open(port)
                conns.append(fresh)
                pool.put_nowait(fresh)
            return
        done = time.perf_counter()
        pool.put_nowait(conn)
        run.latencies.append(done - intended)
        run.service.append(done - sent)
        run.statuses[status] = run.statuses.get(status, 0) + 1
        if on_response is not None:
            on_response(i, status, body)

    t0 = time.perf_counter()
    i = 0
    while i < total:
        now = time.perf_counter()
        while i < total and t0 + i / rate <= now:
            task = asyncio.create_task(one(i, t0 + i / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            run.sent += 1
        if i < total:
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
    if tasks:
        await asyncio.wait(set(tasks), timeout=30)
    run.elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return run


def use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
