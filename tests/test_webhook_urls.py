"""Webhook URLs at the time they are set (issue 13 §4): the address policy for tenants, and control
characters refused for everyone with INVALID_REQUEST — never left to fail at delivery."""

from __future__ import annotations

import httpx

from tests.support.accounts import Tenants
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway

NON_PUBLIC = (
    "http://100.64.0.1/hook",  # CGNAT
    "http://100.100.100.200/latest/meta-data",  # a cloud metadata address inside CGNAT
    "http://[2002:c0a8:101::1]/hook",  # 6to4 (192.168.1.1 inside)
    "http://[fec0::1]/hook",  # site-local
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "http://[::127.0.0.1]/hook",  # IPv4-compatible loopback
    "http://[::ffff:a00:1]/hook",  # IPv4-mapped 10.0.0.1
    "http://224.0.0.251/hook",  # multicast
    "http://[ff02::1]/hook",
    "http://localhost./hook",
)
CONTROL = (
    "https://hooks.example.com/a\r\nX-Injected: 1",
    "https://hooks.example.com/a\n",
    "https://hooks.example.com/\ta",
    "https://hooks.exam\tple.com/a",
    "https://hooks.example.com/a\x00b",
    "\rhttps://hooks.example.com/a",
)


def code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_non_public_addresses_are_refused_for_tenants(gw: Gateway, tenants: Tenants) -> None:
    alice = await tenants.signup("alice")
    await alice.http.post("/devices", json={"token": TOKEN})
    for url in NON_PUBLIC:
        assert code(await alice.http.patch("/auth/me", json={"webhookUrl": url})) == (400, "INVALID_REQUEST"), url
        r = await alice.http.patch(f"/devices/{TOKEN}", json={"webhookUrl": url})
        assert code(r) == (400, "INVALID_REQUEST"), url
    assert gw.rt.router.account_target(alice.user_id) is None


async def test_control_characters_are_refused_for_everyone(gw: Gateway, tenants: Tenants) -> None:
    alice = await tenants.signup("alice")
    await alice.http.post("/devices", json={"token": TOKEN})
    await gw.post("/devices", {"token": OTHER})
    for url in CONTROL:
        r = await alice.http.patch("/auth/me", json={"webhookUrl": url})
        assert code(r) == (400, "INVALID_REQUEST") and "control characters" in r.json()["error"]["message"], url
        assert code(await alice.http.patch(f"/devices/{TOKEN}", json={"webhookUrl": url})) == (400, "INVALID_REQUEST")
        # the operator's key is not held to the address policy, but is to this
        r = await gw.http.patch(f"/devices/{OTHER}", json={"webhookUrl": url})
        assert code(r) == (400, "INVALID_REQUEST"), url
        r = await gw.http.post("/devices", json={"token": "60198765431", "webhookUrl": url})
        assert code(r) == (400, "INVALID_REQUEST"), url
    r = await gw.http.patch(f"/devices/{OTHER}", json={"webhookUrl": " http://127.0.0.1:9/hook "})
    assert r.status_code == 200 and r.json()["data"]["webhookUrl"] == "http://127.0.0.1:9/hook"
