"""The gateway under test, in two flavours with one API.

``InProcessGateway`` (the default ``gw``): the app and its lifespan in the test's event loop,
HTTP through ``httpx.ASGITransport`` — no socket, no uvicorn, ~10x cheaper to start and stop.

``LiveGateway`` (``gw`` in a test marked ``@pytest.mark.live``): the same app under uvicorn on
127.0.0.1, for what needs a real socket — WebSockets, raw sockets, another process calling in,
and anything uvicorn itself does.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.settings import Settings
from tests.support import asgi
from tests.support.constants import API_KEY, TOKEN
from tests.support.frames import Frames
from tests.support.net import HOST
from tests.support.poll import until


class NeedsLiveServer(AssertionError):
    """Raised by what an in-process gateway cannot do: the test needs ``@pytest.mark.live``."""


class Gateway:
    """What a test drives: ``settings``, ``app``, ``rt``, the clients ``http`` (admin key) and ``anon``."""

    live = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: Starlette = create_app(settings)
        self.base = f"http://{HOST}:{settings.port}"
        self._clients: list[httpx.AsyncClient] = []
        self._sockets: list[Frames] = []
        self.http = self.client(headers={"X-API-Key": settings.api_key or API_KEY})
        self.anon = self.client()

    @property
    def rt(self) -> Any:
        return self.app.state.runtime

    def client(self, **kw: Any) -> httpx.AsyncClient:
        """A new client to this gateway (closed with it); ``kw`` as for ``httpx.AsyncClient``."""
        c = httpx.AsyncClient(base_url=self.base, transport=self._transport(), **kw)
        self._clients.append(c)
        return c

    def _transport(self) -> httpx.AsyncBaseTransport | None:
        raise NotImplementedError

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        for s in self._sockets:
            await s.close()
        for c in self._clients:
            await c.aclose()

    def ws_url(self, query: str = "") -> str:
        raise NeedsLiveServer("WebSockets need a socket: mark the test @pytest.mark.live")

    def adopt(self, frames: Frames) -> Frames:
        """Close ``frames`` with the gateway."""
        self._sockets.append(frames)
        return frames

    async def ws(self, query: str = "", key: str | None = None) -> Frames:
        sep = "&" if query else ""
        url = self.ws_url(f"?apiKey={key or self.settings.api_key}{sep}{query}")
        frames = self.adopt(Frames(await websockets.connect(url, max_size=None)))
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
        state: dict[str, Any] = r.json()["data"]
        assert state["status"] == "connected", state
        return state

    async def until(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Poll ``fn`` (sync or async) until it returns something truthy (:func:`tests.support.poll.until`)."""
        return await until(fn, timeout)


class InProcessGateway(Gateway):
    """The app and its lifespan in the test's loop; HTTP without a socket (see ``tests.support.asgi``)."""

    def __init__(self, settings: Settings) -> None:
        self._state: dict[str, Any] = {}
        self._stack = AsyncExitStack()
        super().__init__(settings)

    def _transport(self) -> httpx.AsyncBaseTransport:
        return asgi.transport(self.app, self._state, self.settings.trusted_proxies)

    async def start(self) -> None:
        self._state.update(await self._stack.enter_async_context(asgi.lifespan(self.app)))

    async def stop(self) -> None:
        await super().stop()
        await self._stack.aclose()


class _Server(uvicorn.Server):
    """uvicorn's server, told to exit by an event instead of noticing a flag on its 0.1 s tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit = asyncio.Event()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # the Date header, as uvicorn computes it
        await self.exit.wait()

    def capture_signals(self) -> contextlib.nullcontext[None]:  # type: ignore[override]
        return contextlib.nullcontext()  # the test runner owns the signals


class LiveGateway(Gateway):
    """The app under uvicorn on 127.0.0.1, configured as ``python -m gateway`` serves it."""

    live = True

    def __init__(self, settings: Settings) -> None:
        # The listening socket is bound here, on a port the kernel picks, and handed to
        # uvicorn: no window in which another test can take the port.
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        super().__init__(replace(settings, port=int(self._listener.getsockname()[1])))
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    def _transport(self) -> None:
        return None  # httpx's own, over TCP

    def ws_url(self, query: str = "") -> str:
        return f"ws://{HOST}:{self.settings.port}/ws{query}"

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host=HOST,
            port=self.settings.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
            ws_per_message_deflate=False,  # as python -m gateway serves
            forwarded_allow_ips=list(self.settings.trusted_proxies),
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._listener]))
        task, server = self._task, self._server

        def started() -> bool:
            if task.done():
                task.result()  # it failed to start: say why
            return server.started

        await until(started, 10, "uvicorn started")

    async def stop(self) -> None:
        await super().stop()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.exit.set()
            await self._task
        self._listener.close()


def gateway_class(live: bool) -> type[Gateway]:
    return LiveGateway if live else InProcessGateway
