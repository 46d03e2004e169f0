"""``/health/ready`` in cluster mode (CONTRACT §14): ready only once the node has joined — lease loop
running and recent, bus connected — besides the single-node conditions (devices started, store writable)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.applications import Starlette

from gateway.api.routes import health


@dataclass
class Fake:
    joined: bool = True
    connected: bool = True
    started: bool = True

    async def writable(self) -> bool:
        return True


@dataclass
class FakeRuntime:
    ownership: Fake
    bus: Fake
    devices: Fake
    store: Fake


async def _ready(rt: FakeRuntime) -> httpx.Response:
    app = Starlette(routes=health.routes)
    app.state.runtime = rt
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        return await c.get("/health/ready")


async def test_ready_only_once_joined() -> None:
    assert (await _ready(FakeRuntime(Fake(), Fake(), Fake(), Fake()))).status_code == 200
    not_joined = await _ready(FakeRuntime(Fake(joined=False), Fake(), Fake(), Fake()))
    assert not_joined.status_code == 503 and not_joined.json()["error"]["code"] == "NOT_READY"
    bus_down = await _ready(FakeRuntime(Fake(), Fake(connected=False), Fake(), Fake()))
    assert bus_down.status_code == 503
