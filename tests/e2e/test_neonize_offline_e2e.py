"""The real server with the real neonize driver, on a machine without internet.

``python -m gateway`` with ``WA_DRIVER=neonize``: pairing a device cannot reach
WhatsApp, and every part of the gateway must say so quickly and cleanly.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.constants import API_KEY, TOKEN
from tests.support.proc import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path, WA_DRIVER="neonize")
    try:
        yield s.start()
    finally:
        s.kill()


async def next_event(ws: Any, name: str, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("event") == name:
                return dict(frame)


def test_pairing_offline_fails_fast_and_cleanly(server: ServerProcess) -> None:
    """POST /devices -> 500 CONNECTION_FAILED naming the dial error; the WebSocket hears it too."""

    async def scenario() -> tuple[httpx.Response, float, dict[str, Any]]:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws?apiKey={API_KEY}") as ws:
            assert json.loads(await ws.recv())["event"] == "connected"
            async with httpx.AsyncClient(base_url=server.base, headers={"X-API-Key": API_KEY}, timeout=30) as c:
                started = time.monotonic()
                response = await c.post("/devices", json={"token": TOKEN, "method": "qr"})
                elapsed = time.monotonic() - started
            frame = await next_event(ws, "connection-error", 10)
            return response, elapsed, frame

    response, elapsed, frame = asyncio.run(scenario())
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "CONNECTION_FAILED"
    assert "failed to dial web.whatsapp.com:443" in error["message"]
    assert "NEONIZE_PROXY" in error["message"] and "WA_DRIVER=sandbox" in error["message"]  # the next step
    assert elapsed < 10
    assert frame["token"] == TOKEN
    assert "failed to dial" in frame["message"]

    with server.client() as c:
        state = c.get(f"/devices/{TOKEN}").json()["data"]
        assert state["status"] != "connected"
        # Never linked, and why: the console shows this rather than "session kept — reconnect".
        assert state["authenticated"] is False and "failed to dial" in state["lastError"]
        sent = c.post("/messages", json={"token": TOKEN, "to": "60198765432", "text": "hi"})
        assert (sent.status_code, sent.json()["error"]["code"]) == (500, "DEVICE_NOT_CONNECTED")
    assert "Traceback" not in server.log()
    # The operator's log says it too, not only the browser: one warning with the token and the dial error.
    warnings = [json.loads(line) for line in server.log().splitlines() if '"device.connect_failed"' in line]
    assert warnings and warnings[0]["level"] == "warning" and warnings[0]["token"] == TOKEN
    assert "failed to dial" in warnings[0]["error"]


def test_health_stays_fast_while_devices_fail_to_connect(server: ServerProcess) -> None:
    """Failing connects (with pairing codes too) never slow /health down."""
    tokens = ["60123456789", "60198765432", "60171222333", "60122334455", "60133445566"]
    results: list[int] = []
    with server.client() as c:
        # The first neonize device imports neonize (loads its Go library, ~1 s) on the
        # event loop unless the app imports the driver at start-up; not measured here.
        assert c.post("/devices", json={"token": TOKEN}).status_code == 500

    def pair_all() -> None:
        with server.client() as c:
            for i, token in enumerate(tokens * 2):
                method = "code" if i % 2 else "qr"
                results.append(c.post("/devices", json={"token": token, "method": method}).status_code)

    pairing = threading.Thread(target=pair_all)
    pairing.start()
    durations: list[float] = []
    with httpx.Client(base_url=server.base, timeout=5) as c:
        while pairing.is_alive() or len(durations) < 2:
            started = time.monotonic()
            assert c.get("/health").status_code == 200
            durations.append(time.monotonic() - started)
    pairing.join(30)
    assert results == [500] * len(tokens) * 2
    # Ten connects that each held the event loop would slow ten requests; one slow answer alone is the
    # machine (CI once descheduled the server 0.65 s under two busy test workers), so it is allowed.
    durations.sort()
    assert durations[-2] < 0.5, durations[-5:]


def test_sigterm_exits_0_within_10_s_after_failed_connects(server: ServerProcess) -> None:
    with server.client() as c:
        assert c.post("/devices", json={"token": TOKEN}).status_code == 500
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    assert server.wait(12) == 0
    assert time.monotonic() - started < 10
    assert "Traceback" not in server.log()
