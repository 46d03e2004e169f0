"""Accounts on a gateway under test, each with its own authenticated client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import websockets

from tests.support.frames import Frames
from tests.support.gateway import Gateway

PASSWORD = "correct horse battery"


@dataclass
class Tenant:
    user_id: int
    username: str
    token: str  # session token
    api_key: str
    http: httpx.AsyncClient  # authenticated with the API key
    webhook_secret: str = ""  # the account's webhook signing secret, as shown at signup


class Tenants:
    """Creates accounts on a gateway and clients for them; closes the clients at the end."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._clients: list[httpx.AsyncClient] = []

    def client(self, **headers: str) -> httpx.AsyncClient:
        c = self.gw.client(headers=headers)
        self._clients.append(c)
        return c

    async def signup(self, username: str, password: str = PASSWORD, email: str | None = None) -> Tenant:
        """An account created with the admin key."""
        body = {"username": username, "email": email or f"{username}@example.com", "password": password}
        r = await self.gw.http.post("/auth/signup", json=body)
        assert r.status_code == 200, r.text
        d = r.json()["data"]
        http = self.client(**{"X-API-Key": d["apiKey"]})
        return Tenant(d["userId"], d["username"], d["token"], d["apiKey"], http, d["webhookSecret"])

    async def ws(self, headers: dict[str, str] | None = None, query: str = "") -> Frames:
        """A WebSocket authenticated by ``headers`` (a live gateway only); closed with the gateway."""
        url = self.gw.ws_url(query)
        frames = self.gw.adopt(Frames(await websockets.connect(url, additional_headers=headers or {}, max_size=None)))
        await frames.event("connected")
        return frames

    async def aclose(self) -> None:
        for c in self._clients:
            await c.aclose()
