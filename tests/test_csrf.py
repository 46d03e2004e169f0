"""Issue 13 §2: cross-site requests with the session cookie, and non-JSON bodies.

A cookie-authenticated state-changing request or WebSocket upgrade must name the
gateway's own origin (or one in CORS_ORIGINS) in Origin, else Referer; key- and
bearer-authenticated calls are not checked. A state-changing request declaring a
non-JSON body type is 415 UNSUPPORTED_MEDIA_TYPE for everyone.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets

from tests.support.accounts import PASSWORD, Tenants
from tests.support.constants import TOKEN
from tests.support.gateway import Gateway

EVIL = "http://127.0.0.1:1"  # another port of the same host: the same site, another origin


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def session_cookie(gw: Gateway, tenants: Tenants) -> str:
    await tenants.signup("alice")
    r = await gw.anon.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    return str(r.json()["data"]["token"])


async def test_cookie_post_needs_the_gateways_own_origin(gw: Gateway) -> None:
    """Foreign Origin, no Origin and no Referer, a foreign Referer, Origin `null` → 403 FORBIDDEN and nothing
    done; the gateway's own Origin, or its own Referer when Origin is absent → the request goes through."""
    tenants = Tenants(gw)
    try:
        cookie = {"Cookie": f"gw_session={await session_cookie(gw, tenants)}"}
        body = {"token": TOKEN}
        for extra in ({"Origin": EVIL}, {}, {"Referer": EVIL + "/attack.html"}, {"Origin": "null"}):
            r = await gw.anon.post("/devices", json=body, headers={**cookie, **extra})
            assert error(r) == (403, "FORBIDDEN"), extra
            assert "cross-site" in r.json()["error"]["message"]
        assert gw.rt.devices.get(TOKEN) is None
        own = await gw.anon.post("/devices", json=body, headers={**cookie, "Origin": gw.base})
        assert own.status_code == 200, own.text
        by_referer = await gw.anon.patch(
            f"/devices/{TOKEN}", json={"name": "x"}, headers={**cookie, "Referer": gw.base + "/"}
        )
        assert by_referer.status_code == 200, by_referer.text
        # Reading is not state-changing: a cookie GET needs no Origin (CORS keeps other pages from reading it).
        assert (await gw.anon.get("/devices", headers=cookie)).status_code == 200
    finally:
        await tenants.aclose()


async def test_cors_origins_are_allowed_and_keys_are_not_checked(gateway_factory: Any) -> None:
    """An origin listed in CORS_ORIGINS may use the cookie; an API key or bearer token from any Origin is fine."""
    gw = await gateway_factory(cors_origins=("http://console.example:8080",))
    tenants = Tenants(gw)
    try:
        bob_key = (await tenants.signup("bob")).api_key
        cookie = {"Cookie": f"gw_session={await session_cookie(gw, tenants)}"}
        listed = await gw.anon.post(
            "/devices", json={"token": TOKEN}, headers={**cookie, "Origin": "http://console.example:8080"}
        )
        assert listed.status_code == 200, listed.text
        keyed = await gw.anon.post(
            "/devices", json={"token": "60198765432"}, headers={"X-API-Key": bob_key, "Origin": EVIL}
        )
        assert keyed.status_code == 200, keyed.text
        admin = await gw.http.post("/devices", json={"token": "60171222333"}, headers={"Origin": EVIL})
        assert admin.status_code == 200, admin.text
    finally:
        await tenants.aclose()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/json"],
)
async def test_non_json_bodies_are_415(gw: Gateway, content_type: str) -> None:
    """What a cross-site form or a no-preflight fetch can send is refused, with any credential."""
    raw = json.dumps({"token": TOKEN}).encode()
    r = await gw.http.post("/devices", content=raw, headers={"Content-Type": content_type})
    assert error(r) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert gw.rt.devices.get(TOKEN) is None
    # An empty body with a form type (a bodiless cross-site form POST) is refused too.
    r = await gw.http.post(f"/devices/{TOKEN}/disconnect", content=b"", headers={"Content-Type": content_type})
    assert error(r) == (415, "UNSUPPORTED_MEDIA_TYPE")
    r = await gw.anon.post(
        "/auth/login", content=b'{"username":"a","password":"b"}', headers={"Content-Type": content_type}
    )
    assert error(r) == (415, "UNSUPPORTED_MEDIA_TYPE")


async def test_json_types_and_no_type_are_accepted(gw: Gateway) -> None:
    """application/json (with a charset), application/*+json, and no Content-Type at all (curl without -H,
    an empty POST) still work; a GET with any Content-Type is untouched."""
    raw = json.dumps({"token": TOKEN}).encode()
    for ct in ("application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json"):
        r = await gw.http.post("/devices", content=raw, headers={"Content-Type": ct})
        assert r.status_code == 200, (ct, r.text)
    r = await gw.http.post("/devices", content=raw)  # no Content-Type
    assert r.status_code == 200, r.text
    assert "content-type" not in r.request.headers
    r = await gw.http.post(f"/devices/{TOKEN}/stats/reset")  # empty POST, no Content-Type
    assert r.status_code == 200, r.text
    assert (await gw.http.get("/devices", headers={"Content-Type": "text/plain"})).status_code == 200


@pytest.mark.live
async def test_cookie_websocket_needs_the_gateways_own_origin(gw: Gateway) -> None:
    """A WebSocket upgrade with the cookie from a foreign origin (or none) is refused with 403 and the
    envelope — no frame; from the gateway's own origin it connects; ?apiKey= from any origin connects."""
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("carol")
        cookie = {"Cookie": f"gw_session={await session_cookie(gw, tenants)}"}
        url = f"ws://127.0.0.1:{gw.settings.port}/ws"
        for extra in ({"Origin": EVIL}, {}):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(url, additional_headers={**cookie, **extra})
            response = refused.value.response
            assert response.status_code == 403
            assert json.loads(response.body)["error"]["code"] == "FORBIDDEN"
        async with websockets.connect(url, additional_headers={**cookie, "Origin": gw.base}) as ws:
            assert json.loads(await ws.recv())["event"] == "connected"
        async with websockets.connect(f"{url}?apiKey={alice.api_key}", additional_headers={"Origin": EVIL}) as ws:
            assert json.loads(await ws.recv())["event"] == "connected"
    finally:
        await tenants.aclose()
