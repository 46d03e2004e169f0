"""Tenant isolation (CONTRACT §10): two accounts and the admin, over every route
of §4 and every WebSocket action of §5.

An account's view of another account's (or the admin's) device is exactly the
view of a device that does not exist: same status, same code, same message.
The admin sees everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from tests.support.accounts import Tenant, Tenants
from tests.support.gateway import Gateway

TA = "60123456789"  # alice's device
TB = "60198765432"  # bob's device
TADM = "60171222333"  # the admin's device (no owner)
GHOST = "60133334444"  # a valid number that is nobody's device
SENDER = "60127654321"  # writes to every device, so each has a contact
SALES = "120363000000000001@g.us"  # a group every sandbox device is in


@dataclass
class World:
    gw: Gateway
    tenants: Tenants
    alice: Tenant
    bob: Tenant

    def viewer(self, name: str) -> Tenant:
        return self.alice if name == "alice" else self.bob


# The operator's global target (with credentials and a query token, which only the admin sees, redacted)
# and each device's own: every device has outbox rows (nothing listens: they fail at once).
OPERATOR_URL = "http://op:pw@127.0.0.1:9/hook?key=op-secret"


def own_url(token: str) -> str:
    return f"http://127.0.0.1:9/{token}?token=secret-{token}"


@pytest.fixture
async def world(gateway_factory: Any) -> AsyncIterator[World]:
    gw: Gateway = await gateway_factory(webhook_url=OPERATOR_URL, webhook_max_attempts=1, webhook_allow_private=True)
    tenants = Tenants(gw)
    alice, bob = await tenants.signup("alice"), await tenants.signup("bob")
    for client, token in ((alice.http, TA), (bob.http, TB), (gw.http, TADM)):
        body = {"token": token, "name": f"dev-{token}", "webhookUrl": own_url(token)}
        r = await client.post("/devices", json=body)
        assert r.status_code == 200, r.text
        r = await gw.post(f"/sandbox/devices/{token}/scan")
        assert r.json()["data"]["status"] == "connected", r.text
        r = await gw.post(f"/sandbox/devices/{token}/incoming", {"from": SENDER, "name": "Sam", "text": "hello"})
        assert r.status_code == 200, r.text
    for client, token in ((alice.http, TA), (bob.http, TB), (gw.http, TADM)):
        await gw.until(lambda c=client, t=token: _has_contacts(c, t))
    yield World(gw, tenants, alice, bob)
    await tenants.aclose()


async def _has_contacts(client: httpx.AsyncClient, token: str) -> bool:
    r = await client.get(f"/contacts/{token}")
    return r.status_code == 200 and r.json()["data"]["total"] > 0


def mounted(gw: Gateway, method: str, path: str) -> bool:
    for route in gw.app.routes:
        if isinstance(route, Route) and route.path == path and method in (route.methods or ()):
            return True
    return False


def answer(r: httpx.Response, token: str) -> tuple[int, str, str]:
    """(status, code, message with the token written as {t}) — what a caller can tell apart."""
    err = r.json()["error"]
    return r.status_code, err["code"], err["message"].replace(token, "{t}")


# (method, route template as mounted, concrete path, body) — {t} is the device token.
DEVICE_ROWS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("GET", "/devices/{token}", "/devices/{t}", None),
    ("PATCH", "/devices/{token}", "/devices/{t}", {"name": "hijacked"}),
    ("PATCH", "/devices/{token}", "/devices/{t}", {"webhookUrl": "https://93.184.215.14/steal"}),
    ("GET", "/devices/{token}/qr", "/devices/{t}/qr", None),
    ("GET", "/devices/{token}/qr", "/devices/{t}/qr?format=png", None),
    ("GET", "/devices/{token}/qr", "/devices/{t}/qr?format=svg", None),
    ("POST", "/devices/{token}/disconnect", "/devices/{t}/disconnect", None),
    ("POST", "/devices/{token}/stats/reset", "/devices/{t}/stats/reset", None),
    ("GET", "/devices/{token}/groups", "/devices/{t}/groups", None),
    ("DELETE", "/devices/{token}", "/devices/{t}", None),
    ("DELETE", "/devices/{token}", "/devices/{t}?purge=true", None),
    ("POST", "/messages", "/messages", {"token": "{t}", "to": GHOST, "text": "from a stranger"}),
    ("POST", "/validate/phone", "/validate/phone", {"token": "{t}", "phone": GHOST}),
    ("GET", "/contacts/{token}", "/contacts/{t}", None),
    ("GET", "/contacts/{token}", "/contacts/{t}?format=csv", None),
    ("GET", "/contacts/{token}", "/contacts/{t}?format=csv&limit=all", None),
    # the message store, chats and groups (§12)
    ("GET", "/devices/{token}/messages", "/devices/{t}/messages", None),
    ("GET", "/devices/{token}/messages", "/devices/{t}/messages?direction=in&limit=5", None),
    ("GET", "/devices/{token}/messages/{id}", "/devices/{t}/messages/3EB0ISOLATION", None),
    ("PATCH", "/devices/{token}/messages/{id}", "/devices/{t}/messages/3EB0ISOLATION", {"text": "edited"}),
    ("DELETE", "/devices/{token}/messages/{id}", "/devices/{t}/messages/3EB0ISOLATION", None),
    ("POST", "/devices/{token}/messages/{id}/read", "/devices/{t}/messages/3EB0ISOLATION/read", None),
    ("GET", "/devices/{token}/chats", "/devices/{t}/chats", None),
    ("POST", "/devices/{token}/chats/{jid}/presence", f"/devices/{{t}}/chats/{SENDER}/presence", {"state": "paused"}),
    ("POST", "/devices/{token}/groups", "/devices/{t}/groups", {"name": "g", "participants": [SENDER]}),
    ("GET", "/devices/{token}/groups/{jid}", f"/devices/{{t}}/groups/{SALES}", None),
    (
        "POST",
        "/devices/{token}/groups/{jid}/participants",
        f"/devices/{{t}}/groups/{SALES}/participants",
        {"action": "promote", "participants": [SENDER]},
    ),
    ("GET", "/devices/{token}/groups/{jid}/invite", f"/devices/{{t}}/groups/{SALES}/invite", None),
    ("DELETE", "/devices/{token}/groups/{jid}", f"/devices/{{t}}/groups/{SALES}", None),
    ("POST", "/messages", "/messages", {"token": "{t}", "to": GHOST, "location": {"latitude": 1, "longitude": 2}}),
    ("POST", "/messages", "/messages", {"token": "{t}", "to": GHOST, "text": "re", "replyTo": "3EB0ISOLATION"}),
    # campaigns (§13): sending from another account's device, or to its captured contacts
    (
        "POST",
        "/campaigns",
        "/campaigns",
        {"token": "{t}", "name": "c", "message": {"text": "from a stranger"}, "recipients": [{"phone": GHOST}]},
    ),
    (
        "POST",
        "/campaigns",
        "/campaigns",
        {"token": "{t}", "name": "c", "message": {"text": "from a stranger"}, "contactsSource": "all"},
    ),
]


def _fill(body: dict[str, Any] | None, token: str) -> dict[str, Any] | None:
    return None if body is None else {k: (token if v == "{t}" else v) for k, v in body.items()}


async def _call(client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
    return await client.request(method, path, json=body) if body is not None else await client.request(method, path)


def _rows(gw: Gateway, rows: list[tuple[str, str, str, Any]]) -> list[tuple[str, str, str, Any]]:
    """The rows, every one of whose routes must be mounted: a route that vanished fails the matrix."""
    missing = sorted({f"{r[0]} {r[1]}" for r in rows if not mounted(gw, r[0], r[1])})
    assert not missing, f"isolation rows for routes that are not mounted: {missing}"
    return rows


@pytest.mark.parametrize(("viewer", "victims"), [("alice", (TB, TADM)), ("bob", (TA, TADM))])
async def test_another_accounts_device_answers_like_a_missing_one(
    world: World, viewer: str, victims: tuple[str, ...]
) -> None:
    """Every per-device route: another account's (or the admin's) device answers exactly like a token
    that is nobody's device, and is left untouched."""
    client = world.viewer(viewer).http
    for method, _template, path, body in _rows(world.gw, DEVICE_ROWS):
        row = f"{method} {path}"
        missing = await _call(client, method, path.replace("{t}", GHOST), _fill(body, GHOST))
        assert answer(missing, GHOST)[:2] == (404, "DEVICE_NOT_FOUND"), (row, missing.text)
        for victim in victims:
            r = await _call(client, method, path.replace("{t}", victim), _fill(body, victim))
            assert answer(r, victim) == answer(missing, GHOST), (row, victim, r.text)
    await _assert_untouched(world, victims)


async def _assert_untouched(world: World, tokens: tuple[str, ...]) -> None:
    gw = world.gw
    for token in tokens:
        state = (await gw.http.get(f"/devices/{token}")).json()["data"]
        assert state["status"] == "connected" and state["name"] == f"dev-{token}", state
        assert state["webhookUrl"] == own_url(token)
        assert state["stats"]["messagesReceived"] == 1
        sent = (await gw.http.get(f"/sandbox/devices/{token}/sent")).json()["data"]["messages"]
        assert all(m["text"] != "from a stranger" for m in sent)
        assert (await gw.http.get(f"/contacts/{token}")).json()["data"]["total"] == 1


async def test_owner_and_admin_reach_the_device(world: World) -> None:
    """The same rows (but deletes) work for the owner and for the admin: isolation is not a blanket refusal."""
    for method, _template, path, body in _rows(world.gw, [r for r in DEVICE_ROWS if r[0] != "DELETE"]):
        for client, token in ((world.alice.http, TA), (world.bob.http, TB), (world.gw.http, TB), (world.gw.http, TADM)):
            r = await _call(client, method, path.replace("{t}", token), _fill(body, token))
            # (A connected device has no QR to render: NOT_FOUND there is not about who may see it.)
            ok = r.status_code < 400 or r.json()["error"]["code"] not in ("DEVICE_NOT_FOUND", "FORBIDDEN")
            assert ok, (method, path, token, r.text)


async def test_campaigns_are_isolated(world: World) -> None:
    """Another account's (or the admin's) campaign answers exactly like an id that does not exist, on every
    campaign route; lists hold the caller's own; the admin reads and lists them all."""
    gw = world.gw
    ids = {}
    for client, token in ((world.alice.http, TA), (world.bob.http, TB), (gw.http, TADM)):
        body = {"token": token, "name": "c", "message": {"text": "hi"}, "recipients": [{"phone": GHOST}]}
        body["startAt"] = "2099-01-01T00:00:00Z"  # scheduled: nothing is sent meanwhile
        r = await client.post("/campaigns", json=body)
        assert r.status_code == 201, r.text
        ids[token] = r.json()["data"]["id"]
    routes = [("GET", ""), ("GET", "/recipients"), ("GET", "/recipients?format=csv"), ("POST", "/pause"),
              ("POST", "/resume"), ("POST", "/cancel")]  # fmt: skip
    for viewer, own in ((world.alice, TA), (world.bob, TB)):
        listed = (await viewer.http.get("/campaigns")).json()["data"]["campaigns"]
        assert [c["id"] for c in listed] == [ids[own]]
        for method, tail in routes:
            missing = await viewer.http.request(method, f"/campaigns/cmp_000000000000000000000000{tail}")
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
            for token, cid in ids.items():
                if token == own:
                    continue
                r = await viewer.http.request(method, f"/campaigns/{cid}{tail}")
                got = (r.status_code, r.json()["error"]["message"].replace(cid, "{id}"))
                assert got == (404, missing.json()["error"]["message"].replace("cmp_000000000000000000000000", "{id}"))
    for cid in ids.values():
        c = (await gw.http.get(f"/campaigns/{cid}")).json()["data"]
        assert c["status"] == "scheduled", c  # nobody else paused or cancelled it
    assert len((await gw.http.get("/campaigns")).json()["data"]["campaigns"]) == 3


async def test_lists_show_only_own_devices(world: World) -> None:
    """GET /devices and /health/detailed list the caller's devices only; the admin's list has all."""
    gw = world.gw
    for tenant, own in ((world.alice, TA), (world.bob, TB)):
        devices = (await tenant.http.get("/devices")).json()["data"]["devices"]
        assert [d["token"] for d in devices] == [own]
        detailed = (await tenant.http.get("/health/detailed")).json()["data"]
        assert detailed["deviceCount"] == 1 and [d["token"] for d in detailed["devices"]] == [own]
    devices = (await gw.http.get("/devices")).json()["data"]["devices"]
    assert sorted(d["token"] for d in devices) == sorted([TA, TB, TADM])
    assert (await gw.http.get("/health/detailed")).json()["data"]["deviceCount"] == 3


async def test_another_accounts_token_is_taken_on_create(world: World) -> None:
    """POST /devices with a token linked in another account → 409 DEVICE_TAKEN; the owner stays."""
    for tenant, victim in ((world.alice, TB), (world.alice, TADM), (world.bob, TA)):
        r = await tenant.http.post("/devices", json={"token": victim, "name": "mine now"})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "DEVICE_TAKEN")
    await _assert_untouched(world, (TA, TB, TADM))
    assert (await world.alice.http.post("/devices", json={"token": TA})).status_code == 200


async def test_message_history_and_chats_show_only_the_own_device(world: World) -> None:
    """A message to bob's device is in bob's history and chats, never in alice's; the admin reads both."""
    gw = world.gw
    r = await gw.post(f"/sandbox/devices/{TB}/incoming", {"from": GHOST, "name": "Gus", "text": "for bob only"})
    secret = r.json()["data"]["id"]

    async def stored(client: httpx.AsyncClient, token: str) -> bool:
        return (await client.get(f"/devices/{token}/messages/{secret}")).status_code == 200

    await gw.until(lambda: stored(world.bob.http, TB))
    assert await stored(gw.http, TB)
    for path in (f"/devices/{TA}/messages", f"/devices/{TA}/chats"):
        r = await world.alice.http.get(path)
        assert r.status_code == 200 and secret not in r.text and "for bob only" not in r.text
    assert (await world.alice.http.get(f"/devices/{TA}/messages/{secret}")).json()["error"]["code"] == "NOT_FOUND"
    chats = (await world.bob.http.get(f"/devices/{TB}/chats")).json()["data"]["chats"]
    assert f"{GHOST}@s.whatsapp.net" in {c["jid"] for c in chats}


async def test_a_reused_token_does_not_inherit_messages(world: World) -> None:
    """Deleting a device deletes its messages: another account that links the same number starts empty."""
    r = await world.bob.http.delete(f"/devices/{TB}")
    assert r.status_code == 200, r.text
    assert (await world.alice.http.post("/devices", json={"token": TB})).status_code == 200
    page = (await world.alice.http.get(f"/devices/{TB}/messages")).json()["data"]
    assert page["messages"] == []
    assert (await world.alice.http.get(f"/devices/{TB}/chats")).json()["data"]["chats"] == []


async def test_admin_only_routes_are_forbidden_to_accounts(world: World) -> None:
    """/sandbox/*, /auth/accounts and /metrics answer FORBIDDEN to an account, on its own device too."""
    rows: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", f"/sandbox/devices/{TA}/scan", None),
        ("POST", f"/sandbox/devices/{TA}/incoming", {"from": SENDER, "text": "x"}),
        ("POST", f"/sandbox/devices/{TA}/history", {"contacts": []}),
        ("POST", f"/sandbox/devices/{TA}/drop", None),
        ("POST", f"/sandbox/devices/{TA}/unlink", None),
        ("GET", f"/sandbox/devices/{TA}/sent", None),
        ("POST", f"/sandbox/devices/{TA}/edit", {"id": "3EB0X", "text": "x"}),
        ("POST", f"/sandbox/devices/{TA}/revoke", {"id": "3EB0X"}),
        ("POST", f"/sandbox/devices/{TB}/scan", None),
        ("GET", "/auth/accounts", None),
        ("DELETE", f"/auth/accounts/{world.bob.user_id}", None),
    ]
    rows.append(("GET", "/metrics", None))
    rows.append(("DELETE", "/cache", None))
    for method, path, body in rows:
        r = await _call(world.alice.http, method, path, body)
        assert (r.status_code, r.json()["error"]["code"]) == (403, "FORBIDDEN"), (path, r.text)
    await _assert_untouched(world, (TA, TB))


async def test_deliveries_are_isolated(world: World) -> None:
    """GET /webhooks/deliveries lists the caller's deliveries to its own targets only (never the operator's
    WEBHOOK_URL, even for events of its own device); another's delivery cannot be seen or retried."""
    gw = world.gw
    everything = await gw.until(lambda: _deliveries(gw.http, ""))
    by_token = {d["token"] for d in everything}
    assert {TA, TB, TADM} <= by_token
    for tenant, own, others in ((world.alice, TA, (TB, TADM)), (world.bob, TB, (TA, TADM))):
        mine = await _deliveries(tenant.http, "")
        assert mine and {d["token"] for d in mine} == {own}
        assert {d["url"] for d in mine} == {own_url(own)}  # its own URL, verbatim; the operator's never
        operator_rows = [d for d in everything if d["token"] == own and "/hook" in d["url"]]
        assert operator_rows  # the operator's target got this device's events too: hidden from the tenant
        for row in operator_rows:
            for r in (
                await tenant.http.get(f"/webhooks/deliveries/{row['id']}"),
                await tenant.http.post(f"/webhooks/deliveries/{row['id']}/retry"),
            ):
                assert (r.status_code, r.json()["error"]["code"]) == (404, "NOT_FOUND"), r.text
        r = await tenant.http.get(f"/webhooks/deliveries/{mine[0]['id']}")
        assert r.status_code == 200 and r.json()["data"]["url"] == own_url(own)
        for victim in others:
            r = await tenant.http.get(f"/webhooks/deliveries?token={victim}")
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                assert r.json()["data"]["deliveries"] == []
            else:
                assert r.json()["error"]["code"] == "DEVICE_NOT_FOUND"
        if mounted(gw, "POST", "/webhooks/deliveries/{id}/retry"):
            theirs = next(d for d in everything if d["token"] in others)
            missing = await tenant.http.post("/webhooks/deliveries/999999999/retry")
            r = await tenant.http.post(f"/webhooks/deliveries/{theirs['id']}/retry")
            assert (r.status_code, r.json()["error"]["code"]) == (
                missing.status_code,
                missing.json()["error"]["code"],
            )
            assert r.status_code == 404


async def test_admin_sees_every_delivery_with_urls_redacted(world: World) -> None:
    """The admin lists (and reads one by one) every delivery: the operator's and every tenant's, each URL
    with its userinfo and query values replaced by ***."""
    gw = world.gw
    everything = await gw.until(lambda: _deliveries(gw.http, ""))
    urls = {d["url"] for d in everything}
    assert "http://***@127.0.0.1:9/hook?key=***" in urls
    for token in (TA, TB, TADM):
        assert f"http://127.0.0.1:9/{token}?token=***" in urls
    assert not any("secret" in u or "pw" in u for u in urls), urls
    one = await gw.http.get(f"/webhooks/deliveries/{everything[0]['id']}")
    # The dispatcher keeps trying these (port 9 refuses): attempts and lastError move between the two reads.
    stable = ("id", "event", "token", "url", "createdAt")
    assert one.status_code == 200
    assert {k: one.json()["data"][k] for k in stable} == {k: everything[0][k] for k in stable}
    text = (await gw.http.get("/webhooks/deliveries?limit=1000")).text
    assert "op-secret" not in text and "secret-" not in text and "op:pw" not in text


async def _deliveries(client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
    r = await client.get(f"/webhooks/deliveries{query}")
    assert r.status_code == 200, r.text
    deliveries: list[dict[str, Any]] = r.json()["data"]["deliveries"]
    return deliveries


# -- WebSocket -------------------------------------------------------------------------------------


@pytest.mark.live  # a WebSocket
async def test_websocket_actions_see_only_own_devices(world: World) -> None:
    """get_state / get_qr on another's device answer like a missing one; list_devices lists own devices;
    whoami names the account."""
    ws = await world.tenants.ws({"X-API-Key": world.alice.api_key})
    await ws.send("list_devices")
    listed = await ws.event("devices")
    assert [d["token"] for d in listed["data"]["devices"]] == [TA]
    await ws.send("whoami")
    assert (await ws.event("whoami"))["data"]["username"] == "alice"
    for action in ("get_state", "get_qr"):
        answers = []
        for token in (GHOST, TB, TADM, TA):
            start = len(ws.frames)
            await ws.send(action, {"token": token})
            frame = await ws.wait(lambda f: f["event"] in ("error", "session_state", "qrcode"), start=start)
            answers.append((frame["event"], (frame.get("message") or "").replace(token, "{t}")))
        ghost, tb, tadm, own = answers
        assert ghost[0] == "error" and tb == ghost and tadm == ghost
        assert own[0] != "error"
    admin = await world.gw.ws()
    await admin.send("list_devices")
    assert len((await admin.event("devices"))["data"]["devices"]) == 3
    await admin.send("get_state", {"token": TB})
    assert (await admin.event("session_state", TB))["data"]["status"] == "connected"


@pytest.mark.live  # a WebSocket
async def test_websocket_events_reach_only_the_owner_and_the_admin(world: World) -> None:
    """Events of bob's device never reach alice, even when she subscribes to its token (by action or URL);
    bob and the admin get them."""
    gw = world.gw
    alice_all = await world.tenants.ws({"Authorization": f"Bearer {world.alice.token}"})
    alice_sub = await world.tenants.ws({"Cookie": f"gw_session={world.alice.token}", "Origin": gw.base})
    await alice_sub.send("subscribe", {"tokens": [TB, TA], "events": ["message", "session_update"]})
    await alice_sub.event("subscribed")
    alice_url = await world.tenants.ws({"X-API-Key": world.alice.api_key}, f"?tokens={TB},{TA}")
    bob = await world.tenants.ws({"X-API-Key": world.bob.api_key})
    admin = await gw.ws()
    for token in (TB, TADM):
        r = await gw.post(f"/sandbox/devices/{token}/incoming", {"from": SENDER, "text": f"secret for {token}"})
        assert r.status_code == 200
        secret = r.json()["data"]["id"]
        # every message event of §11/§12: a send's statuses, one typed on the phone, edit, revoke, reaction
        sent = await gw.post("/messages", {"token": token, "to": SENDER, "text": f"reply from {token}"})
        await gw.post(f"/sandbox/devices/{token}/incoming", {"from": SENDER, "fromMe": True, "text": "phone"})
        await gw.post(f"/sandbox/devices/{token}/edit", {"id": secret, "text": "edited secret"})
        await gw.post(f"/sandbox/devices/{token}/revoke", {"id": secret})
        reaction = {"messageId": sent.json()["data"]["messageId"], "emoji": "👍"}
        await gw.post(f"/sandbox/devices/{token}/incoming", {"from": SENDER, "reaction": reaction})
        # the device's own edit and revoke through the API are told too (stored behind the send: poll)
        mine = f"/devices/{token}/messages/{reaction['messageId']}"
        await gw.until(lambda mine=mine: _answers_200(gw, mine))
        assert (await gw.http.patch(mine, json={"text": "edited reply"})).status_code == 200
        assert (await gw.http.delete(mine)).status_code == 200
    for event in ("message.sent", "message.edited", "message.revoked", "message.reaction"):
        await bob.event(event, TB)
    for event in ("message.edited", "message.revoked"):
        await bob.wait(lambda f, e=event: f["event"] == e and f.get("token") == TB and f["data"]["fromMe"] is True)
    await bob.wait(lambda f: f["event"] == "message.status" and f.get("token") == TB and f["data"]["status"] == "read")
    await gw.post(f"/sandbox/devices/{TB}/drop")
    await bob.wait(lambda f: f["event"] == "connection-success" and f.get("token") == TB)
    # A marker on alice's own device, sent after: once it arrives, anything of bob's would have too.
    await gw.post(f"/sandbox/devices/{TA}/incoming", {"from": SENDER, "text": "marker"})
    for ws in (alice_all, alice_sub, alice_url):
        await ws.wait(lambda f: f["event"] == "message" and f.get("token") == TA)
        leaked = [f for f in ws.frames if f.get("token") in (TB, TADM)]
        assert leaked == [], leaked
    await bob.event("message", TB)
    assert all(f.get("token") in (None, TB) for f in bob.frames)
    await admin.event("message", TB)
    await admin.event("message", TADM)
    await admin.event("message", TA)


@pytest.mark.live  # a WebSocket
async def test_new_devices_pair_privately(world: World) -> None:
    """The QR code of a device being paired by alice reaches alice and the admin, never bob."""
    gw = world.gw
    alice = await world.tenants.ws({"X-API-Key": world.alice.api_key})
    bob = await world.tenants.ws({"X-API-Key": world.bob.api_key})
    admin = await gw.ws()
    token = "60122223333"
    assert (await world.alice.http.post("/devices", json={"token": token})).status_code == 200
    qr = await alice.event("qrcode", token)
    await admin.event("qrcode", token)
    # bob's own activity as a marker
    await gw.post(f"/sandbox/devices/{TB}/incoming", {"from": SENDER, "text": "marker"})
    await bob.event("message", TB)
    assert all(f.get("token") != token and f.get("data") != qr["data"] for f in bob.frames)


# -- webhooks: one account's slow receiver ----------------------------------------------------------


class Receiver:
    """A tiny HTTP server for webhooks: records bodies; answers 200 at once, or (``hold``) only once released."""

    def __init__(self, hold: bool) -> None:
        self.hold = hold
        self.release = asyncio.Event()
        self.arrival = asyncio.Event()  # set at each request (a waiter clears it)
        self.bodies: list[dict[str, Any]] = []
        self.waiting = 0
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.bodies.append(json.loads(await reader.readexactly(length)))
                if self.hold:
                    self.waiting += 1
                self.arrival.set()
                if self.hold:
                    await self.release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    async def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.close()


async def test_a_slow_receiver_does_not_delay_another_accounts_webhooks(gateway_factory: Any) -> None:
    """alice's account webhook never answers; bob's deliveries still arrive while hers hang, and each
    receiver gets only its own account's events."""
    slow, fast = Receiver(hold=True), Receiver(hold=False)
    await slow.start()
    await fast.start()
    gw: Gateway = await gateway_factory(webhook_allow_private=True, webhook_concurrency=16, webhook_timeout_ms=60_000)
    tenants = Tenants(gw)
    try:
        alice, bob = await tenants.signup("alice"), await tenants.signup("bob")
        for tenant, receiver, token in ((alice, slow, TA), (bob, fast, TB)):
            r = await tenant.http.patch("/auth/me", json={"webhookUrl": receiver.url})
            assert r.status_code == 200, r.text
            assert (await tenant.http.post("/devices", json={"token": token})).status_code == 200
            assert (await gw.post(f"/sandbox/devices/{token}/scan")).status_code == 200
        for i in range(30):  # more than the whole dispatcher's concurrency, all to the slow receiver
            await gw.post(f"/sandbox/devices/{TA}/incoming", {"from": SENDER, "text": f"to alice {i}"})
        await gw.until(lambda: slow.waiting >= 1)
        r = await gw.post(f"/sandbox/devices/{TB}/incoming", {"from": SENDER, "text": "to bob"})
        assert r.status_code == 200
        await gw.until(
            lambda: any(b["event"] == "message.received" and b["data"]["text"] == "to bob" for b in fast.bodies),
            timeout=10,
        )
        assert slow.waiting >= 1 and not slow.release.is_set()  # bob's arrived while alice's hang unanswered
        assert {b["token"] for b in fast.bodies} == {TB}
        assert {b["token"] for b in slow.bodies} == {TA}
    finally:
        await slow.stop()
        await fast.stop()
        await tenants.aclose()


async def _answers_200(gw: Any, path: str) -> bool:
    return bool((await gw.http.get(path)).status_code == 200)


class HangingReceivers:
    """Receivers on 127.0.0.1 (one port, so one origin, each) that record every request and answer none
    until :meth:`release`; ``full`` is set once every receiver holds ``n`` unanswered requests."""

    def __init__(self, count: int, n: int) -> None:
        self.receivers = [Receiver(hold=True) for _ in range(count)]
        self.n = n
        self.full = asyncio.Event()

    async def start(self) -> None:
        for r in self.receivers:
            await r.start()

    def check(self) -> bool:
        if all(r.waiting >= self.n for r in self.receivers):
            self.full.set()
        return self.full.is_set()

    async def stop(self) -> None:
        for r in self.receivers:
            await r.stop()


async def test_eight_hanging_receivers_do_not_delay_another_account(gateway_factory: Any) -> None:
    """alice's 8 receivers (8 origins) never answer; each holds exactly WEBHOOK_ORIGIN_CONCURRENCY (8) of her
    attempts, together all 64 WEBHOOK_CONCURRENCY slots — and bob's delivery still arrives while they hang."""
    hanging = HangingReceivers(count=8, n=8)
    await hanging.start()
    fast = Receiver(hold=False)
    await fast.start()
    gw: Gateway = await gateway_factory(webhook_allow_private=True, webhook_timeout_ms=120_000)
    assert gw.settings.webhook_concurrency == 64 and gw.settings.webhook_origin_concurrency == 8
    tenants = Tenants(gw)
    try:
        alice, bob = await tenants.signup("alice"), await tenants.signup("bob")
        assert (await bob.http.patch("/auth/me", json={"webhookUrl": fast.url})).status_code == 200
        assert (await bob.http.post("/devices", json={"token": TB})).status_code == 200
        assert (await gw.post(f"/sandbox/devices/{TB}/scan")).status_code == 200
        tokens = [f"6012345678{i}" for i in range(1, 9)]
        for token, receiver in zip(tokens, hanging.receivers, strict=True):
            body = {"token": token, "webhookUrl": receiver.url}
            assert (await alice.http.post("/devices", json=body)).status_code == 200, token
            assert (await gw.post(f"/sandbox/devices/{token}/scan")).status_code == 200
            for i in range(10):  # more than the origin's share, all waiting behind the hanging ones
                r = await gw.post(f"/sandbox/devices/{token}/incoming", {"from": SENDER, "text": f"a{i}"})
                assert r.status_code == 200
        async with asyncio.timeout(30):  # a bound for a broken build, not a measurement
            while not hanging.check():
                await _changed(hanging.receivers)
        assert gw.rt.dispatcher.in_flight >= 64  # every shared slot is held by alice's hanging receivers

        def bob_hit() -> bool:
            return any(b["data"] and b["data"].get("text") == "to bob" for b in fast.bodies)

        r = await gw.post(f"/sandbox/devices/{TB}/incoming", {"from": SENDER, "text": "to bob"})
        assert r.status_code == 200
        async with asyncio.timeout(30):
            while not bob_hit():
                await _changed([fast])
        # bob's arrived while every one of alice's is still unanswered, none over its origin's cap
        assert [rcv.waiting for rcv in hanging.receivers] == [8] * 8
        assert not any(rcv.release.is_set() for rcv in hanging.receivers)
        assert {b["token"] for b in fast.bodies} == {TB}
    finally:
        await hanging.stop()
        await fast.stop()
        await tenants.aclose()


async def _changed(receivers: list[Receiver]) -> None:
    """Until one of ``receivers`` records another request."""
    waits = [asyncio.ensure_future(r.arrival.wait()) for r in receivers]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        for r in receivers:
            r.arrival.clear()
