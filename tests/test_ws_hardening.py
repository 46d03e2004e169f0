"""Issue 13 §3, §8, §10 over the WebSocket: revocation closes open sockets (4401), failed
authentications count against the address (429 once limited), a valid but limited caller hears
429, and client frames are bounded (list sizes, a per-connection frame budget)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
import websockets

from gateway.accounts import SESSION_TTL_S
from gateway.api.routes import ws as ws_route
from tests.support.accounts import PASSWORD, Tenants
from tests.support.frames import Frames
from tests.support.gateway import Gateway

REVOKED = 4401
pytestmark = pytest.mark.live  # WebSockets need the real server (the budget's unit test does not mind)


async def open_ws(gw: Gateway, headers: dict[str, str] | None = None, query: str = "") -> Frames:
    url = f"ws://127.0.0.1:{gw.settings.port}/ws{query}"
    frames = Frames(await websockets.connect(url, additional_headers=headers or {}))
    gw.adopt(frames)
    await frames.event("connected")
    return frames


async def closed_with(frames: Frames, timeout: float = 1.0) -> int | None:
    """The close code the server sent, waiting at most ``timeout`` (the brief: within a second)."""
    async with asyncio.timeout(timeout):
        await frames.ws.wait_closed()
    code: int | None = frames.ws.close_code
    return code


def still_open(frames: Frames) -> bool:
    return frames.ws.close_code is None


async def test_deleting_a_key_closes_its_sockets(gw: Gateway) -> None:
    """DELETE /auth/keys/{id}: the sockets opened with that key close with 4401 within a second; the
    account's other key's socket and the admin's stay open and keep answering."""
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("alice")
        made = (await alice.http.post("/auth/keys", json={"name": "crm"})).json()["data"]
        doomed = [await open_ws(gw, query=f"?apiKey={made['key']}") for _ in range(2)]
        doomed.append(await open_ws(gw, {"X-API-Key": made["key"]}))
        other = await open_ws(gw, query=f"?apiKey={alice.api_key}")
        admin = await gw.ws()
        assert (await alice.http.delete(f"/auth/keys/{made['id']}")).status_code == 200
        for frames in doomed:
            assert await closed_with(frames) == REVOKED
        for frames in (other, admin):
            at = len(frames.frames)
            await frames.send("ping")
            await frames.event("pong", start=at)
            assert still_open(frames)
    finally:
        await tenants.aclose()


async def test_logout_closes_the_sessions_sockets(gw: Gateway) -> None:
    """POST /auth/logout: sockets opened with the session (cookie, bearer) and with the key minted at that
    login close with 4401; a socket of the signup session stays open."""
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("alice")
        login = (await gw.anon.post("/auth/login", json={"username": "alice", "password": PASSWORD})).json()["data"]
        by_cookie = await open_ws(gw, {"Cookie": f"gw_session={login['token']}", "Origin": gw.base})
        by_bearer = await open_ws(gw, {"Authorization": f"Bearer {login['token']}"})
        by_login_key = await open_ws(gw, query=f"?apiKey={login['apiKey']}")
        other_session = await open_ws(gw, {"Authorization": f"Bearer {alice.token}"})
        out = await gw.anon.post("/auth/logout", headers={"Authorization": f"Bearer {login['token']}"})
        assert out.status_code == 200
        for frames in (by_cookie, by_bearer, by_login_key):
            assert await closed_with(frames) == REVOKED
        await other_session.send("whoami")
        await other_session.event("whoami")
    finally:
        await tenants.aclose()


async def test_a_session_that_expires_closes_its_sockets(gw: Gateway) -> None:
    """A socket never outlives its credential: when the session that opened it (cookie, bearer, or the key
    minted at that login) expires, it closes with 4401 "session expired"; another session's stays open."""
    tenants = Tenants(gw)
    accounts = gw.rt.accounts
    real_clock = accounts.clock
    try:
        alice = await tenants.signup("alice")
        # Log in "a week ago, less half a second": the session (and its key) expire half a second from now.
        accounts.clock = lambda: real_clock() - SESSION_TTL_S + 0.5
        login = (await gw.anon.post("/auth/login", json={"username": "alice", "password": PASSWORD})).json()["data"]
        accounts.clock = real_clock
        doomed = [
            await open_ws(gw, {"Cookie": f"gw_session={login['token']}", "Origin": gw.base}),
            await open_ws(gw, {"Authorization": f"Bearer {login['token']}"}),
            await open_ws(gw, query=f"?apiKey={login['apiKey']}"),
        ]
        other_session = await open_ws(gw, {"Authorization": f"Bearer {alice.token}"})
        for frames in doomed:
            assert await closed_with(frames, timeout=5) == REVOKED
            assert frames.ws.close_reason == "session expired"
        await other_session.send("whoami")
        await other_session.event("whoami")
    finally:
        accounts.clock = real_clock
        await tenants.aclose()


async def test_deleting_an_account_closes_its_sockets(gw: Gateway) -> None:
    """DELETE /auth/accounts/{id}: every socket of that account closes with 4401; bob's stays."""
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("alice")
        bob = await tenants.signup("bob")
        sockets = [
            await open_ws(gw, query=f"?apiKey={alice.api_key}"),
            await open_ws(gw, {"Authorization": f"Bearer {alice.token}"}),
        ]
        bobs = await open_ws(gw, query=f"?apiKey={bob.api_key}")
        assert (await gw.http.delete(f"/auth/accounts/{alice.user_id}")).status_code == 200
        for frames in sockets:
            assert await closed_with(frames) == REVOKED
        await bobs.send("ping")
        await bobs.event("pong")
        assert gw.rt.auth.revocations.watching() >= 1
    finally:
        await tenants.aclose()


async def test_failed_websocket_authentications_are_rate_limited(gateway_factory: Any) -> None:
    """Wrong keys over /ws count against the address like HTTP's: 403 until the limit, then 429 with the
    envelope and Retry-After."""
    gw = await gateway_factory(rate_limit_per_minute=5)
    url = f"ws://127.0.0.1:{gw.settings.port}/ws?apiKey=wrong-guess"
    statuses = []
    for _ in range(7):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url)
        statuses.append(refused.value.response.status_code)
    assert statuses[:5] == [403] * 5 and statuses[5:] == [429, 429]
    last = refused.value.response
    assert json.loads(last.body)["error"]["code"] == "RATE_LIMITED"
    assert int(last.headers["Retry-After"]) >= 1


async def test_a_valid_but_limited_client_is_told_it_is_limited(gateway_factory: Any) -> None:
    """Over its own limit, a valid key's upgrade gets 429 RATE_LIMITED — not the 403 of a wrong key."""
    gw = await gateway_factory(rate_limit_per_minute=3)
    for _ in range(3):
        frames = await gw.ws()
        await frames.close()
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"ws://127.0.0.1:{gw.settings.port}/ws?apiKey={gw.settings.api_key}")
    assert refused.value.response.status_code == 429
    assert json.loads(refused.value.response.body)["error"]["code"] == "RATE_LIMITED"


async def test_subscribe_lists_are_capped(gw: Gateway) -> None:
    """101 tokens (by action or on the URL) → an error frame, the subscription unchanged, the socket open;
    100 are accepted."""
    tokens = [f"6012345{i:04d}" for i in range(101)]
    ws = await gw.ws()
    await ws.send("subscribe", {"tokens": tokens})
    err = await ws.event("error")
    assert "at most 100" in err["message"]
    await ws.send("subscribe", {"tokens": tokens[:100]})
    ok = await ws.event("subscribed")
    assert ok["data"]["tokens"] is not None
    await ws.send("subscribe", {"events": ["message"] * 101})
    await ws.event("error", start=len(ws.frames) - 1)
    by_url = await gw.ws(query="tokens=" + ",".join(tokens))
    assert "at most 100" in (await by_url.event("error"))["message"]


class FrozenClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_frame_budget_refills_at_its_rate() -> None:
    clock = FrozenClock()
    budget = ws_route.FrameBudget(rate=10, burst=3, clock=clock)
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    assert budget.refused_in_row == 1
    clock.now += 0.15  # one and a half frames' worth
    assert budget.take() and not budget.take()
    clock.now += 10  # never more than the burst
    assert [budget.take() for _ in range(4)] == [True, True, True, False]


async def test_a_flooding_client_gets_errors_then_is_closed(gw: Gateway, monkeypatch: Any) -> None:
    """With the clock stopped: the burst is answered, the next frames get a "too many frames" error each
    (the socket stays open), and after ABUSE_LIMIT refused frames in a row the socket closes with 1008."""
    clock = FrozenClock()
    monkeypatch.setattr(ws_route.Session, "budget_factory", staticmethod(lambda: ws_route.FrameBudget(clock=clock)))
    ws = await gw.ws()
    for _ in range(ws_route.FRAME_BURST + 5):
        await ws.send("ping")
    await ws.wait(lambda f: sum(x["event"] == "error" for x in ws.frames) >= 5)
    assert sum(f["event"] == "pong" for f in ws.frames) == ws_route.FRAME_BURST
    assert "too many frames" in next(f for f in ws.frames if f["event"] == "error")["message"]
    assert still_open(ws)
    clock.now += 1  # 20 more allowed
    await ws.send("ping")
    await ws.wait(lambda f: sum(x["event"] == "pong" for x in ws.frames) > ws_route.FRAME_BURST)
    with contextlib.suppress(websockets.ConnectionClosed):
        for _ in range(1000):
            await ws.ws.send(json.dumps({"action": "ping"}))
    assert await closed_with(ws, timeout=5) == 1008
