"""Issue 13 §8, §9 and the shutdown traceback, against the real process (``python -m gateway``):
what a connection may do before it authenticates, measured on the server's resident set.

Before the guard: five unfinished 20 MB headers grew RSS by 130 MiB, 100 silent connections stayed
open for good, and a WebSocket upgrade with a header line over 8 KiB hung forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.support.constants import API_KEY
from tests.support.pace import pace
from tests.support.poll import until_sync
from tests.support.proc import ServerProcess

pytestmark = pytest.mark.e2e

UPGRADE = (
    "GET /ws?apiKey={key} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def launch(servers: list[ServerProcess], data_dir: Path, **env: str) -> ServerProcess:
    s = ServerProcess(data_dir, **env)
    servers.append(s)
    return s.start()


def rss(server: ServerProcess) -> int:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def exchange(server: ServerProcess, data: bytes, timeout: float = 5.0) -> tuple[float, bytes]:
    """Send ``data``; read until the server closes. (seconds it took, what came back)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            body = await reader.read()
        return time.monotonic() - started, body
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def envelope(response: bytes) -> tuple[int, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]["code"]


async def endless_header(server: ServerProcess, total: int = 20 * 1024 * 1024) -> int:
    """Stream a header of ``total`` bytes without ever ending it; how many bytes the server took."""
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    sent = 0
    chunk = b"a" * 65536
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        while sent < total:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return sent


def test_unfinished_huge_headers_are_cut_at_16_kib(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """Five concurrent 20 MB headers are refused at 16 KiB (431 in the envelope, connection closed): the
    senders are stopped long before 20 MB and the server's RSS stays within a few MiB (was +130 MiB)."""
    server = launch(servers, tmp_path)

    async def run() -> tuple[list[int], tuple[float, bytes]]:
        sent = await asyncio.gather(*(endless_header(server) for _ in range(5)))
        one = await exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n")
        return list(sent), one

    with server.client() as c:
        assert c.get("/health").status_code == 200
    before = rss(server)
    sent, (_, answer) = asyncio.run(run())
    grown = rss(server) - before
    print(f"server RSS grew by {grown / 2**20:.2f} MiB; bytes the senders got out: {sent}")
    assert grown < 5 * 1024 * 1024
    assert all(s < 20 * 1024 * 1024 for s in sent)
    assert envelope(answer) == (431, "HEADERS_TOO_LARGE")
    with server.client() as c:  # just under the cap is fine
        assert c.get("/health", headers={"X-Pad": "a" * 15000}).status_code == 200


def test_silent_and_slow_connections_time_out(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """HEADER_TIMEOUT_MS=500: 100 connections that send nothing are closed by the server; one that sent
    half a request line gets 408 REQUEST_TIMEOUT; a kept-alive connection still serves its requests."""
    server = launch(servers, tmp_path, HEADER_TIMEOUT_MS="500")

    async def run() -> tuple[list[tuple[float, bytes]], tuple[float, bytes]]:
        silent = await asyncio.gather(*(exchange(server, b"", timeout=10) for _ in range(100)))
        partial = await exchange(server, b"GET /health HTTP/1.1\r\nHo", timeout=10)
        return list(silent), partial

    silent, (took, answer) = asyncio.run(run())
    assert all(body == b"" for _, body in silent)
    assert max(t for t, _ in silent) < 5
    assert envelope(answer) == (408, "REQUEST_TIMEOUT") and took < 5
    with server.client() as c:  # one keep-alive connection, requests spaced over the header deadline
        for _ in range(3):
            assert c.get("/health").status_code == 200


def test_a_kept_alive_connection_gets_a_new_head_deadline_per_request(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    """HEADER_TIMEOUT_MS=500: a request answered, then, 0.3 s later (the client's pace), half of the next
    one: its deadline counts from its own first byte (408 about 0.5 s after it, not 0.2 s), and the
    connection's earlier deadline closes nothing meanwhile."""
    server = launch(servers, tmp_path, HEADER_TIMEOUT_MS="500")

    async def run() -> tuple[int, float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
            await pace(0.3)  # the client's speed between requests
            started = time.monotonic()  # before the bytes leave: the server's deadline is at least 0.5 s on
            writer.write(b"GET /health HTTP/1.1\r\nHo")
            await writer.drain()
            async with asyncio.timeout(5):
                answer = await reader.read()
            return int(head.split(b" ", 2)[1]), time.monotonic() - started, answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    first, took, answer = asyncio.run(run())
    assert first == 200
    assert envelope(answer) == (408, "REQUEST_TIMEOUT")
    assert 0.45 <= took < 5, took  # (the loop's clock is read once per turn: a little slack)


def test_max_connections_bounds_open_connections(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """MAX_CONNECTIONS=20: with 20 connections open (HTTP and WebSocket), one more is answered
    503 TOO_MANY_CONNECTIONS and closed at once; once they close, requests are served again."""
    server = launch(servers, tmp_path, MAX_CONNECTIONS="20", HEADER_TIMEOUT_MS="30000")

    async def run() -> tuple[int, str]:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(15)]
        sockets = [await websockets.connect(f"ws://127.0.0.1:{server.port}/ws?apiKey={API_KEY}") for _ in range(5)]
        try:
            _, answer = await exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            return envelope(answer)
        finally:
            for _, w in idle:
                w.close()
            for ws in sockets:
                await ws.close()

    assert asyncio.run(run()) == (503, "TOO_MANY_CONNECTIONS")

    def healthy() -> bool:  # the server notices the closes as they arrive
        with server.client() as c:
            return c.get("/health").status_code == 200

    until_sync(healthy, 10, "/health answers again")


def test_websocket_upgrades_with_big_headers_are_answered(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """An upgrade with a 10 KiB header line (over websockets' 8 KiB) or 20 KiB of headers is answered
    431 at once instead of hanging; a normal upgrade still works."""
    server = launch(servers, tmp_path)
    head = UPGRADE.format(key=API_KEY).encode()

    async def run() -> list[tuple[float, bytes]]:
        return [
            await exchange(server, head + b"X-Pad: " + b"a" * 10_000 + b"\r\n\r\n"),
            await exchange(server, head + b"X-Pad: " + b"a" * 20_000 + b"\r\n\r\n"),
        ]

    for took, answer in asyncio.run(run()):
        assert envelope(answer) == (431, "HEADERS_TOO_LARGE") and took < 2

    async def normal() -> str:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws?apiKey={API_KEY}") as ws:
            return str(json.loads(await ws.recv())["event"])

    assert asyncio.run(normal()) == "connected"


def test_websocket_frames_over_64_kib_close_the_socket(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """uvicorn's ws_max_size is the application's frame limit: a 100 KiB frame closes the socket (1009)
    before the application ever holds it; a 60 KiB one is read (and answered)."""
    server = launch(servers, tmp_path)

    async def run() -> tuple[str, int | None]:
        url = f"ws://127.0.0.1:{server.port}/ws?apiKey={API_KEY}"
        async with websockets.connect(url, max_size=None) as ws:
            await ws.recv()
            await ws.send(json.dumps({"action": "ping", "pad": "a" * 60_000}))
            answered = json.loads(await ws.recv())["event"]
            await ws.send(json.dumps({"action": "ping", "pad": "a" * 100_000}))
            with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                async with asyncio.timeout(5):
                    await ws.recv()
                    await ws.wait_closed()
            return answered, ws.close_code

    assert asyncio.run(run()) == ("pong", 1009)


def test_sigterm_with_slow_connections_logs_no_traceback(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """SIGTERM while clients trickle their bodies: the process exits 0, the slow clients get
    503 SHUTTING_DOWN, and stderr/stdout hold no traceback and no CancelledError."""
    server = launch(servers, tmp_path)
    with server.client() as c:
        baseline = c.get("/health/detailed").json()["data"]["tasks"]
    slow = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(
            b"POST /messages HTTP/1.1\r\nHost: x\r\nX-API-Key: " + API_KEY.encode() + b"\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"tok'
        )
        slow.append(s)
    with server.client() as c:  # until the three requests are running in the app (waiting on their bodies)
        until_sync(lambda: c.get("/health/detailed").json()["data"]["tasks"] >= baseline + 3, 10, "3 slow requests")
    server.signal(signal.SIGTERM)
    assert server.wait(20) == 0
    answers: list[Any] = []
    for s in slow:
        s.settimeout(5)
        with contextlib.suppress(OSError):
            answers.append(envelope(s.recv(65536)))
        s.close()
    log = server.log()
    assert "Traceback" not in log and "CancelledError" not in log, log[-3000:]
    assert answers and all(a == (503, "SHUTTING_DOWN") for a in answers), answers


def test_a_short_api_key_is_warned_about(tmp_path: Path, servers: list[ServerProcess]) -> None:
    """API_KEY under 24 characters: a warning line at start-up (never the key itself); a long one: none."""
    weak = launch(servers, tmp_path / "weak", API_KEY="short-key-123")
    strong = launch(servers, tmp_path / "strong", API_KEY="k" * 24)
    lines = [json.loads(line) for line in weak.log().splitlines() if line.startswith("{")]
    warned = [line for line in lines if line.get("event") == "api_key.weak"]
    assert warned and warned[0]["level"] == "warning" and "short-key-123" not in weak.log()
    assert "api_key.weak" not in strong.log()
