"""Shared fixtures: settings on a temp dir, and a live in-process gateway.

``gw`` runs the real app under uvicorn on 127.0.0.1 and a free port inside the
test's event loop, so HTTP and WebSocket tests exercise the whole stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import subprocess
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
import websockets

from gateway.app import create_app
from gateway.settings import Settings

# neonize's import opens `uname -a` with os.popen and never closes it; take
# that one known leak here, silently, so it cannot surface inside a random test.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ResourceWarning)
    import neonize.client
    import neonize.utils.platform  # noqa: F401

    gc.collect()
    # gc parked that Popen in subprocess._active (uname was still running); reap it
    # now, or the next subprocess started by any test frees it and warns there.
    for _proc in list(getattr(subprocess, "_active", None) or []):
        _proc.wait()
    subprocess._cleanup()  # type: ignore[attr-defined]

API_KEY = "test-admin-key"
TOKEN = "60123456789"
OTHER = "60198765432"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    base = Settings(
        host="127.0.0.1",
        port=free_port(),
        api_key=API_KEY,
        data_dir=data_dir,
        wa_driver="sandbox",
        rate_limit_per_minute=0,
        log_format="json",
        sandbox_receipt_delay_ms=20,
    )
    return replace(base, **overrides)


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    structlog.reset_defaults()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


class Frames:
    """A WebSocket client that records every frame, with deadline-bounded waits."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._new = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                async with self._new:
                    self.frames.append(json.loads(raw))
                    self._new.notify_all()
        async with self._new:
            self._new.notify_all()

    async def wait(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0, start: int = 0
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout), self._new:
            while True:
                for f in self.frames[start:]:
                    if pred(f):
                        return f
                if self._task.done():
                    raise AssertionError(f"socket closed; frames: {self.frames}")
                await self._new.wait()

    async def event(self, name: str, token: str | None = None, timeout: float = 5.0, start: int = 0) -> dict[str, Any]:
        return await self.wait(
            lambda f: f["event"] == name and (token is None or f.get("token") == token), timeout, start
        )

    async def send(self, action: str, payload: dict[str, Any] | None = None) -> None:
        await self.ws.send(json.dumps({"action": action, "payload": payload or {}}))

    def names(self) -> list[str]:
        return [f["event"] for f in self.frames]

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await self._task


class LiveGateway:
    def __init__(self, settings: Settings) -> None:
        # The listening socket is bound here, on a port the kernel picks, and handed to
        # uvicorn: no window in which another test can take the port.
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        settings = replace(settings, port=int(self._listener.getsockname()[1]))
        self.settings = settings
        self.app = create_app(settings)
        self.base = f"http://127.0.0.1:{settings.port}"
        self.http = httpx.AsyncClient(base_url=self.base, headers={"X-API-Key": settings.api_key or API_KEY})
        self.anon = httpx.AsyncClient(base_url=self.base)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sockets: list[Frames] = []

    @property
    def rt(self) -> Any:
        return self.app.state.runtime

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.settings.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
            ws_per_message_deflate=False,  # as python -m gateway serves
            forwarded_allow_ips=list(self.settings.trusted_proxies),
        )
        self._server = uvicorn.Server(config)
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve(sockets=[self._listener]))
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for s in self._sockets:
            await s.close()
        await self.http.aclose()
        await self.anon.aclose()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._listener.close()

    async def ws(self, query: str = "", key: str | None = None) -> Frames:
        sep = "&" if query else ""
        url = f"ws://127.0.0.1:{self.settings.port}/ws?apiKey={key or self.settings.api_key}{sep}{query}"
        frames = Frames(await websockets.connect(url, max_size=None))
        self._sockets.append(frames)
        await frames.event("connected")
        return frames

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.http.post(path, json=body, **kw)

    async def pair(self, token: str = TOKEN, method: str = "qr") -> dict[str, Any]:
        """Create a sandbox device and scan it: returns its state, connected."""
        r = await self.post("/devices", {"token": token, "method": method})
        assert r.status_code == 200, r.text
        r = await self.post(f"/sandbox/devices/{token}/scan")
        assert r.status_code == 200, r.text
        state = r.json()["data"]
        assert state["status"] == "connected", state
        return state

    async def until(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Poll ``fn`` (sync or async) until it returns something truthy."""
        async with asyncio.timeout(timeout):
            while True:
                value = fn()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(0.01)


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[LiveGateway]:
    live = LiveGateway(settings)
    await live.start()
    try:
        yield live
    finally:
        await live.stop()


@pytest.fixture
async def gateway_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start gateways with custom settings; all are stopped at teardown."""
    started: list[LiveGateway] = []

    async def start(**overrides: Any) -> LiveGateway:
        live = LiveGateway(make_settings(overrides.pop("data_dir", tmp_path), **overrides))
        await live.start()
        started.append(live)
        return live

    yield start
    for live in reversed(started):
        await live.stop()
