"""Changes made on one node hold on every node at once (gateway/cluster/invalidate.py): revoked keys
and sessions, deleted accounts, account webhook targets and secrets, device webhook secrets,
``DELETE /cache`` — applied by the others without waiting for a cache to expire (credentials are
cached 30 s: every check below is done well inside that)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.webhooks.keys import TARGET_ACCOUNT, TARGET_DEVICE
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.poll import until
from tests.test_ws_hardening import REVOKED, closed_with, open_ws, still_open

PASSWORD = "correct horse battery"


async def signup(gw: Gateway, name: str) -> dict[str, Any]:
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    r = await gw.http.post("/auth/signup", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def keyed(gw: Gateway, key: str) -> httpx.AsyncClient:
    return gw.client(headers={"X-API-Key": key})


async def refused(client: httpx.AsyncClient) -> bool:
    return (await client.get("/devices")).status_code == 401


async def test_a_key_revoked_on_one_node_is_refused_on_the_others(nodes: list[Gateway]) -> None:
    a, b = nodes
    alice = await signup(a, "alice")
    made = (await keyed(a, alice["apiKey"]).post("/auth/keys", json={"name": "crm"})).json()["data"]
    on_b = keyed(b, made["key"])
    assert (await on_b.get("/devices")).status_code == 200  # resolved, and cached on b for 30 s
    assert (await keyed(a, alice["apiKey"]).delete(f"/auth/keys/{made['id']}")).status_code == 200
    await until(lambda: refused(on_b), 10, "the revoked key refused on node b")
    assert (await keyed(b, alice["apiKey"]).get("/devices")).status_code == 200  # her other key still works


async def test_a_session_logged_out_on_one_node_is_refused_on_the_others(nodes: list[Gateway]) -> None:
    a, b = nodes
    bob = await signup(a, "bob")
    session_on_b = b.client(headers={"Authorization": f"Bearer {bob['token']}"})
    assert (await session_on_b.get("/devices")).status_code == 200
    r = await a.client(headers={"Authorization": f"Bearer {bob['token']}"}).post("/auth/logout")
    assert r.status_code == 200, r.text
    await until(lambda: refused(session_on_b), 10, "the logged-out session refused on node b")


async def test_an_account_deleted_on_one_node_is_gone_from_the_others(nodes: list[Gateway]) -> None:
    a, b = nodes
    carol = await signup(a, "carol")
    on_b = keyed(b, carol["apiKey"])
    r = await on_b.post("/devices", json={"token": TOKEN})  # her device lives on node b
    assert r.status_code == 200, r.text
    assert b.rt.devices.get(TOKEN) is not None and a.rt.devices.get(TOKEN) is None
    r = await a.http.delete(f"/auth/accounts/{carol['userId']}")
    assert r.status_code == 200, r.text
    await until(lambda: refused(on_b), 10, "the deleted account's key refused on node b")
    await until(lambda: b.rt.devices.get(TOKEN) is None, 10, "its device removed on node b")
    assert carol["userId"] not in b.rt.dispatcher.keys.accounts


async def test_account_webhook_changes_reach_every_node(nodes: list[Gateway]) -> None:
    a, b = nodes
    dave = await signup(a, "dave")
    uid = dave["userId"]
    hook = "https://93.184.216.34/hooks/wa"  # a public address: no DNS needed
    r = await keyed(a, dave["apiKey"]).patch(
        "/auth/me", json={"webhookUrl": hook, "webhookEvents": ["message.received"]}
    )
    assert r.status_code == 200, r.text
    await until(lambda: b.rt.router.account_target(uid) is not None, 10, "the account's target on node b")
    assert b.rt.router.account_target(uid) == (hook, frozenset({"message.received"}))
    r = await keyed(a, dave["apiKey"]).post("/auth/me/webhook-secret")
    assert r.status_code == 200, r.text
    rotated = r.json()["data"]["webhookSecret"]

    def b_signs_with_the_new_secret() -> bool:
        signers = b.rt.dispatcher.keys.signers(TARGET_ACCOUNT, uid, None)
        return bool(signers) and signers[0] == b.rt.dispatcher.keys._signer(rotated)

    await until(b_signs_with_the_new_secret, 10, "node b signing with the rotated secret")


async def test_a_devices_new_webhook_secret_signs_its_deliveries_on_every_node(nodes: list[Gateway]) -> None:
    a, b = nodes
    await a.pair(TOKEN)
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    r = await a.http.patch(f"/devices/{TOKEN}", json={"webhookSecret": secret})
    assert r.status_code == 200, r.text
    keys = b.rt.dispatcher.keys

    def b_signs_with(value: str | None) -> bool:
        signers = keys.signers(TARGET_DEVICE, None, TOKEN)
        if value is None:
            return signers == ([keys.operator] if keys.operator else [])
        return signers == [keys._signer(value)]

    await until(lambda: b_signs_with(secret), 10, "node b signing the device's deliveries with its secret")
    r = await a.http.patch(f"/devices/{TOKEN}", json={"webhookSecret": None})
    assert r.status_code == 200, r.text
    await until(lambda: b_signs_with(None), 10, "node b no longer using the removed secret")


async def test_delete_cache_on_one_node_empties_every_nodes_phone_cache(nodes: list[Gateway]) -> None:
    a, b = nodes
    await b.pair(TOKEN)
    r = await b.post("/validate/phone", {"token": TOKEN, "phone": OTHER})
    assert r.status_code == 200, r.text
    assert len(b.rt.phone_cache) == 1
    r = await a.http.delete("/cache")
    assert r.status_code == 200, r.text
    await until(lambda: len(b.rt.phone_cache) == 0, 10, "node b's phone cache emptied")
    r = await b.post("/validate/phone", {"token": TOKEN, "phone": OTHER})
    assert r.json()["data"]["cached"] is False


@pytest.mark.live
async def test_a_socket_on_another_node_closes_when_its_key_is_revoked(nodes: list[Gateway]) -> None:
    a, b = nodes
    erin = await signup(a, "erin")
    made = (await keyed(a, erin["apiKey"]).post("/auth/keys", json={"name": "ws"})).json()["data"]
    doomed = await open_ws(b, query=f"?apiKey={made['key']}")
    other = await open_ws(b, query=f"?apiKey={erin['apiKey']}")
    assert (await keyed(a, erin["apiKey"]).delete(f"/auth/keys/{made['id']}")).status_code == 200
    assert await closed_with(doomed) == REVOKED
    assert still_open(other)
