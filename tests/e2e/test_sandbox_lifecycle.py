"""The whole device lifecycle against the real process, watched over a real WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.constants import API_KEY, OTHER, TOKEN
from tests.support.proc import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path, SANDBOX_RECONNECT_MS="500", SANDBOX_RECEIPT_DELAY_MS="20").start()
    yield s
    s.stop()


class Watcher:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def until(self, pred: Any, timeout: float = 5.0) -> dict[str, Any]:
        for f in self.frames:
            if pred(f):
                return f
        async with asyncio.timeout(timeout):
            while True:
                f = json.loads(await self.ws.recv())
                self.frames.append(f)
                if pred(f):
                    return f


def on(event: str, token: str = TOKEN, **fields: Any) -> Any:
    return lambda f: f["event"] == event and f.get("token") == token and all(f.get(k) == v for k, v in fields.items())


def test_pair_frames_drop_unlink_delete_in_the_real_process(server: ServerProcess) -> None:
    """QR pairing and code pairing with their frames, drop → back on its own, unlink, delete — then healthy."""

    async def scenario() -> None:
        url = f"ws://127.0.0.1:{server.port}/ws?apiKey={API_KEY}"
        async with (
            websockets.connect(url) as ws,
            httpx.AsyncClient(base_url=server.base, headers={"X-API-Key": API_KEY}) as http,
        ):
            w = Watcher(ws)
            assert (await w.until(lambda f: f["event"] == "connected"))["data"]["clientId"]

            started = time.monotonic()
            r = await http.post("/devices", json={"token": TOKEN, "method": "qr"})
            assert r.json()["data"]["status"] == "pairing"
            qr = await w.until(on("qrcode"), timeout=1.0)
            assert qr["data"].startswith("2@") and time.monotonic() - started < 1.5
            await http.post(f"/sandbox/devices/{TOKEN}/scan")
            assert (await w.until(on("connection-success")))["data"]["pushname"]
            await w.until(lambda f: on("session_update")(f) and f["data"]["status"] == "connected")

            r = await http.post("/devices", json={"token": OTHER, "method": "code"})
            code = (await w.until(on("pairing-code", OTHER)))["data"]["code"]
            assert len(code) == 9 and code[4] == "-"
            await http.post(f"/sandbox/devices/{OTHER}/scan")
            await w.until(on("connection-success", OTHER))

            await http.post("/messages", json={"token": TOKEN, "to": OTHER, "text": "hi"})
            receipt = await w.until(on("message.receipt"))
            assert receipt["data"]["type"] == "delivered"
            await http.post(f"/sandbox/devices/{TOKEN}/incoming", json={"from": OTHER, "name": "Ali", "text": "yo"})
            assert (await w.until(on("message")))["data"]["from"] == OTHER
            assert (await w.until(on("contacts.new")))["data"] == {"phone": OTHER, "name": "Ali"}

            n = len(w.frames)
            await http.post(f"/sandbox/devices/{TOKEN}/drop")
            await w.until(on("connection-error"))
            await w.until(lambda f: w.frames.index(f) >= n and on("connection-success")(f), timeout=2.0)

            await http.post(f"/sandbox/devices/{TOKEN}/unlink")
            assert await w.until(on("connection-error", message="Logged out"))
            assert not (server.data_dir / f"{TOKEN}.db").exists()

            r = await http.delete(f"/devices/{OTHER}")
            assert r.status_code == 200
            await w.until(on("connection-error", OTHER, message="Logged out"))
            r = await http.get(f"/devices/{OTHER}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "DEVICE_NOT_FOUND"
            assert (await http.get("/health/ready")).status_code == 200

    asyncio.run(scenario())
