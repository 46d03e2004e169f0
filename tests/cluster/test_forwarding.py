"""Calls for a device on another node are forwarded over the bus and answered exactly as if local
(gateway/api/forwarding.py, gateway/cluster/forward.py); 503 DEVICE_MOVING when nobody can answer.

Two in-process nodes; node a holds the device and serves it (``on_acquired``, as the ownership of
the lease helper calls it), node b gets the calls.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from gateway.api.forwarding import ROUTES, match
from tests.support.bus import synced
from tests.support.constants import OTHER, TOKEN
from tests.support.errors import assert_error
from tests.support.gateway import Gateway
from tests.support.nodes import owned_by_a

SENDER = "60198765431"


def same_answer(x: httpx.Response, y: httpx.Response) -> None:
    """Status, envelope and headers alike (but the envelope's time and request id)."""
    assert x.status_code == y.status_code, (x.text, y.text)
    bx, by = x.json(), y.json()
    for body in (bx, by):
        body.pop("meta", None)
        if isinstance(body.get("data"), dict):
            body["data"].pop("uptime", None)  # seconds since connected: moves between the two calls
    assert bx == by
    skip = {"date", "x-request-id", "content-length"}
    assert {k: v for k, v in x.headers.items() if k not in skip} == {
        k: v for k, v in y.headers.items() if k not in skip
    }


def test_the_forwarded_routes_come_from_the_operations_table() -> None:
    paths = {(r.method, r.path) for r in ROUTES}
    assert ("POST", "/messages") in paths and ("POST", "/validate/phone") in paths
    assert ("GET", "/devices/{token}") in paths and ("POST", "/sandbox/devices/{token}/scan") in paths
    assert ("GET", "/devices/{token}/messages") in paths and ("DELETE", "/devices/{token}") in paths
    assert not any(p.startswith("/contacts/") for _, p in paths)  # the shared store answers anywhere
    assert ("GET", "/devices") not in paths and ("DELETE", "/cache") not in paths
    scope: dict[str, Any] = {"method": "GET", "path": f"/devices/{TOKEN}/messages/ABC"}
    found = match(scope)
    assert found is not None and found[1] == TOKEN and found[0].path == "/devices/{token}/messages/{id}"
    assert match({"method": "GET", "path": "/devices"}) is None


async def test_a_send_on_another_node_is_forwarded_and_answered_as_if_local(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    rid = "3f2a9c0d-1e4b-4a69-8a1b-2c3d4e5f6a7b"
    r = await b.post("/messages", {"token": TOKEN, "to": OTHER, "text": "via b"}, headers={"X-Request-ID": rid})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == rid and r.json()["meta"]["requestId"] == rid
    assert r.headers.get_list("x-request-id") == [rid]  # the owner's copy is not added to this node's
    sent = (await a.http.get(f"/sandbox/devices/{TOKEN}/sent")).json()["data"]
    assert [m["text"] for m in sent["messages"]] == ["via b"]
    assert a.rt.forwarder.served == 1 and b.rt.forwarder.forwarded == 1
    # Reads and errors come back verbatim: the same state, the same codes.
    same_answer(await b.http.get(f"/devices/{TOKEN}"), await a.http.get(f"/devices/{TOKEN}"))
    bad = {"token": TOKEN, "to": "12", "text": "x"}
    same_answer(await b.post("/messages", bad), await a.post("/messages", bad))
    assert_error(await b.post("/messages", bad), 400, "INVALID_PHONE")
    same_answer(
        await b.http.get(f"/devices/{TOKEN}/qr", params={"format": "svg"}),
        await a.http.get(f"/devices/{TOKEN}/qr", params={"format": "svg"}),
    )


async def test_another_accounts_device_is_not_found_through_any_node(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    body = {"username": "mallory", "email": "m@example.com", "password": "correct horse battery"}
    key = (await a.http.post("/auth/signup", json=body)).json()["data"]["apiKey"]
    mallory = b.client(headers={"X-API-Key": key})
    assert_error(await mallory.get(f"/devices/{TOKEN}"), 404, "DEVICE_NOT_FOUND")
    assert_error(
        await mallory.post("/messages", json={"token": TOKEN, "to": OTHER, "text": "x"}), 404, "DEVICE_NOT_FOUND"
    )
    assert_error(await b.anon.get(f"/devices/{TOKEN}"), 401, "UNAUTHORIZED")  # refused before any forwarding
    assert b.rt.forwarder.forwarded == 2


async def test_an_idempotent_repeat_through_another_node_is_replayed(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    body = {"token": TOKEN, "to": OTHER, "text": "once"}
    first = await b.post("/messages", body, headers={"Idempotency-Key": "k-1"})
    again = await b.post("/messages", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.json()["data"] == first.json()["data"]
    assert again.headers.get("idempotent-replayed") == "true"
    sent = (await a.http.get(f"/sandbox/devices/{TOKEN}/sent")).json()["data"]["messages"]
    assert [m["text"] for m in sent] == ["once"]


async def test_no_owner_is_device_moving_at_once_and_an_unknown_device_is_not_found(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    await a.rt.forwarder.on_released(TOKEN)  # the device is between owners
    await synced(a.rt.bus)
    started = time.perf_counter()
    r = await b.post("/messages", {"token": TOKEN, "to": OTHER, "text": "x"})
    assert_error(r, 503, "DEVICE_MOVING")
    assert r.headers["retry-after"] == "2"
    assert time.perf_counter() - started < 1.0  # "no responders": no timeout to wait for
    assert_error(await b.http.get(f"/devices/{TOKEN}"), 503, "DEVICE_MOVING")
    # A device no node has is answered where the call arrived, as on a single node.
    assert_error(await b.http.get(f"/devices/{SENDER}"), 404, "DEVICE_NOT_FOUND")
    assert_error(await b.post("/messages", {"token": SENDER, "to": OTHER, "text": "x"}), 404, "DEVICE_NOT_FOUND")


async def test_with_the_bus_down_calls_for_other_nodes_devices_are_device_moving(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    await b.rt.bus.stop()
    assert_error(await b.post("/messages", {"token": TOKEN, "to": OTHER, "text": "x"}), 503, "DEVICE_MOVING")
    r = await a.post("/messages", {"token": TOKEN, "to": OTHER, "text": "local"})  # the owner still sends
    assert r.status_code == 200, r.text
    assert (await b.http.get("/health/ready")).status_code == 503


async def test_the_owner_does_not_count_a_forwarded_call_against_the_rate_limit_again(
    nodes: list[Gateway],
) -> None:
    a, b = await owned_by_a(nodes)
    for rt in (a.rt, b.rt):
        rt.limiter.per_minute = 3
    for i in range(3):  # three calls on b: b counts them, a (the owner) does not
        r = await b.post("/messages", {"token": TOKEN, "to": OTHER, "text": f"m{i}"})
        assert r.status_code == 200, r.text
    assert_error(await b.post("/messages", {"token": TOKEN, "to": OTHER, "text": "4th"}), 429, "RATE_LIMITED")
    r = await a.post("/messages", {"token": TOKEN, "to": OTHER, "text": "on a"})
    assert r.status_code == 200, r.text  # a's own budget was untouched by the forwarded three
