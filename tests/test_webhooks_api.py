"""Webhooks end to end: events from the real pump to a real receiver on 127.0.0.1,
both signatures, retries, targets, and the /webhooks/deliveries routes."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest
from standardwebhooks import Webhook

from gateway.settings import Settings
from gateway.store import DeviceRow
from gateway.webhooks.routing import WebhookRouter
from tests.support.accounts import Tenants
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.net import free_port
from tests.support.webhook_receiver import Hit, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SENDER = "60171222333"
ISO_Z = "%Y-%m-%dT%H:%M:%S"


@pytest.fixture
async def hooked(gateway_factory: Any, receiver: Receiver) -> Gateway:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url, webhook_secret=SECRET, webhook_retry_base_ms=20)
    return gw


def verify(hit: Hit) -> dict[str, Any]:
    """Both signatures of a received webhook, checked as a receiver would; returns the body."""
    expected = hmac.new(SECRET.encode(), hit.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(hit.headers["x-webhook-signature"], expected)
    body: dict[str, Any] = Webhook(SECRET).verify(hit.body, hit.headers)
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["user-agent"].startswith("wa-gateway/")
    assert list(body) == ["event", "token", "data", "timestamp"]
    time.strptime(body["timestamp"][:19], ISO_Z)
    assert body["timestamp"].endswith("Z")
    return body


def of(hits: list[Hit], event: str) -> list[dict[str, Any]]:
    return [h.json() for h in hits if h.json()["event"] == event]


async def test_every_event_reaches_the_receiver_signed_with_the_documented_body(
    hooked: Gateway, receiver: Receiver
) -> None:
    """connect, message, new contact, history, receipts, drop, unlink: each a signed webhook shaped per §6."""
    gw = hooked
    await gw.pair()
    await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": SENDER, "name": "Sam", "text": "hello"})
    await gw.post(f"/sandbox/devices/{TOKEN}/history", {"contacts": [{"phone": OTHER, "name": "Ola"}]})
    sent = (await gw.post("/messages", {"token": TOKEN, "to": OTHER, "text": "hi"})).json()["data"]
    await receiver.wait(lambda hits: len(of(hits, "message.receipt")) >= 2)
    await gw.post(f"/sandbox/devices/{TOKEN}/drop")
    await receiver.wait(lambda hits: len(of(hits, "device.connected")) >= 2)
    await gw.post(f"/sandbox/devices/{TOKEN}/unlink")
    hits = await receiver.wait(lambda hits: len(of(hits, "device.logged_out")) >= 1)

    bodies = [verify(h) for h in hits]
    assert all(b["token"] == TOKEN for b in bodies)
    for name in ("device.connected", "device.disconnected", "device.logged_out"):
        assert of(hits, name) and all(b["data"] is None for b in of(hits, name))
    (msg,) = of(hits, "message.received")
    data = msg["data"]
    assert list(data) == ["id", "from", "fromName", "chat", "isGroup", "fromMe", "type", "text", "timestamp"]
    assert (data["from"], data["fromName"], data["chat"], data["isGroup"], data["type"], data["text"]) == (
        SENDER,
        "Sam",
        f"{SENDER}@s.whatsapp.net",
        False,
        "text",
        "hello",
    )
    assert of(hits, "contacts.new")[0]["data"] == {"phone": SENDER, "name": "Sam"}
    (sync,) = of(hits, "contacts.sync")
    assert [(c["phone"], c["name"], c["source"]) for c in sync["data"]] == [(OTHER, "Ola", "history")]
    assert set(sync["data"][0]) == {"phone", "name", "source", "firstSeen", "lastSeen"}
    receipts = of(hits, "message.receipt")
    assert [r["data"]["type"] for r in receipts] == ["delivered", "read"]
    for r in receipts:
        assert list(r["data"]) == ["type", "messageIds", "from", "timestamp"]
        assert r["data"]["messageIds"] == [sent["messageId"]]
    # one delivery per event: the ids never repeat when every first attempt succeeded
    assert len({h.headers["webhook-id"] for h in hits}) == len(hits)


async def test_receiver_failing_twice_then_succeeding_gets_three_attempts_of_one_id(
    hooked: Gateway, receiver: Receiver
) -> None:
    """500, 503, then 200: three attempts with one webhook-id, each signature valid; the row is delivered."""
    receiver.respond = lambda hit: (200, {}) if hit.n >= 3 else ((500, {}) if hit.n == 1 else (503, {}))
    gw = hooked
    await gw.pair()
    hits = await receiver.wait_count(3)
    assert len({h.headers["webhook-id"] for h in hits}) == 1
    assert [verify(h)["event"] for h in hits] == ["device.connected"] * 3
    assert [h.body for h in hits] == [hits[0].body] * 3

    async def delivered() -> dict[str, Any] | None:
        rows = (await gw.http.get("/webhooks/deliveries")).json()["data"]["deliveries"]
        return rows[0] if rows and rows[0]["status"] == "delivered" else None

    row = await gw.until(delivered)
    assert row["attempts"] == 3 and row["lastError"] == "HTTP 503" and row["deliveredAt"]


async def test_device_url_equal_to_global_gets_one_delivery(hooked: Gateway, receiver: Receiver) -> None:
    """A device webhookUrl equal to WEBHOOK_URL → one delivery per event; a different one → its own."""
    gw = hooked
    other = await Receiver(free_port()).start()
    try:
        r = await gw.post("/devices", {"token": TOKEN, "webhookUrl": receiver.url})
        assert r.status_code == 200
        await gw.post(f"/sandbox/devices/{TOKEN}/scan")
        r = await gw.post("/devices", {"token": OTHER, "webhookUrl": other.url, "webhookEvents": ["message.received"]})
        await gw.post(f"/sandbox/devices/{OTHER}/scan")
        await gw.post(f"/sandbox/devices/{OTHER}/incoming", {"from": SENDER, "text": "x"})
        await other.wait_count(1)
        await receiver.wait(lambda hits: len(of(hits, "contacts.new")) == 1)
        rows = (await gw.http.get("/webhooks/deliveries?limit=1000")).json()["data"]["deliveries"]
        mine = [(r["event"], r["url"]) for r in rows if r["token"] == TOKEN]
        assert mine == [("device.connected", receiver.url)]
        theirs = sorted((r["event"], r["url"]) for r in rows if r["token"] == OTHER)
        assert theirs == sorted(
            [
                ("device.connected", receiver.url),
                ("message.received", receiver.url),
                ("message.received", other.url),
                ("contacts.new", receiver.url),
            ]
        )
        assert other.events() == ["message.received"]
    finally:
        await other.stop()


def test_router_targets_filter_and_deduplicate() -> None:
    """WEBHOOK_EVENTS, device webhookEvents and the account target each filter; one URL named twice is one target."""
    s = Settings(webhook_url="http://g/h", webhook_events=frozenset({"message.received"}))
    router = WebhookRouter(s, account_target=lambda owner: ("http://acct/h", None) if owner == 7 else None)
    device = DeviceRow(
        token=TOKEN,
        status="connected",
        created_at="",
        last_update="",
        owner_id=7,
        webhook_url="http://g/h",
        webhook_events=["message.received", "device.connected"],
    )
    assert router.targets("message.received", device) == [
        ("http://g/h", False, "operator"),
        ("http://acct/h", True, "account"),
    ]
    assert router.targets("device.connected", device) == [
        ("http://g/h", True, "device"),
        ("http://acct/h", True, "account"),
    ]
    assert router.targets("contacts.new", device) == [("http://acct/h", True, "account")]
    router.account_target = lambda owner: ("http://g/h", frozenset({"contacts.new"}))
    assert router.targets("contacts.new", device) == [("http://g/h", True, "account")]
    admin_device = DeviceRow(token=TOKEN, status="connected", created_at="", last_update="", webhook_url="http://d/h")
    assert router.targets("device.connected", admin_device) == [("http://d/h", False, "device")]
    rows = router.deliveries("message.received", device, {"a": 1}, "2026-01-01T00:00:00.000Z")
    assert [r.body for r in rows] == [
        b'{"event":"message.received","token":"60123456789","data":{"a":1},"timestamp":"2026-01-01T00:00:00.000Z"}'
    ]
    assert len({r.webhook_id for r in rows}) == len(rows)


async def test_tenant_url_resolving_to_loopback_is_blocked_at_delivery(
    gateway_factory: Any, receiver: Receiver
) -> None:
    """A tenant's URL that now points at 127.0.0.1 fails without a request reaching it."""
    gw: Gateway = await gateway_factory()
    router: WebhookRouter = gw.rt.router
    router.account_target = lambda owner: (receiver.url, None)
    await gw.post("/devices", {"token": TOKEN})
    gw.rt.devices.get(TOKEN).row.owner_id = 42  # as if an account owned it
    await gw.post(f"/sandbox/devices/{TOKEN}/scan")

    async def failed() -> list[dict[str, Any]]:
        rows = (await gw.http.get("/webhooks/deliveries?status=failed")).json()["data"]["deliveries"]
        return rows

    (row,) = await gw.until(failed)
    assert row["lastError"].startswith("blocked") and row["attempts"] == 1
    assert receiver.hits == []


async def test_deliveries_list_shape_filters_and_order(hooked: Gateway, receiver: Receiver) -> None:
    """GET /webhooks/deliveries: documented fields, RFC 3339 times, newest first, status/token/limit filters."""
    gw = hooked
    await gw.pair()
    await gw.pair(OTHER)
    await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": SENDER, "text": "x"})
    await receiver.wait_count(4)

    async def all_delivered() -> list[dict[str, Any]] | None:
        rows = (await gw.http.get("/webhooks/deliveries")).json()["data"]["deliveries"]
        return rows if len(rows) == 4 and all(r["status"] == "delivered" for r in rows) else None

    rows = await gw.until(all_delivered)
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    first = rows[-1]
    assert list(first) == [
        "id",
        "event",
        "token",
        "url",
        "status",
        "attempts",
        "lastError",
        "nextAttemptAt",
        "createdAt",
        "deliveredAt",
    ]
    assert (first["event"], first["token"], first["url"], first["attempts"]) == (
        "device.connected",
        TOKEN,
        receiver.url,
        1,
    )
    assert first["nextAttemptAt"] is None and first["lastError"] is None
    for stamp in (first["createdAt"], first["deliveredAt"]):
        time.strptime(stamp[:19], ISO_Z)
        assert stamp.endswith("Z")
    r = await gw.http.get(f"/webhooks/deliveries?token=0{OTHER[2:]}")  # phone rules apply to ?token
    assert [(d["event"], d["token"]) for d in r.json()["data"]["deliveries"]] == [("device.connected", OTHER)]
    r = await gw.http.get("/webhooks/deliveries?limit=2&status=delivered")
    assert [d["id"] for d in r.json()["data"]["deliveries"]] == [rows[0]["id"], rows[1]["id"]]
    assert (await gw.http.get("/webhooks/deliveries?status=failed")).json()["data"]["deliveries"] == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("status=done", "INVALID_REQUEST"),
        ("limit=0", "INVALID_REQUEST"),
        ("limit=1001", "INVALID_REQUEST"),
        ("limit=ten", "INVALID_REQUEST"),
        ("limit=-5", "INVALID_REQUEST"),
        ("token=123", "INVALID_PHONE"),
    ],
)
async def test_deliveries_list_rejects_bad_query_values(gw: Gateway, query: str, code: str) -> None:
    """Bad ?status / ?limit → 400 INVALID_REQUEST; a ?token that is no phone number → INVALID_PHONE."""
    r = await gw.http.get(f"/webhooks/deliveries?{query}")
    assert r.status_code == 400 and r.json()["error"]["code"] == code


async def test_retry_requeues_a_failed_delivery(gateway_factory: Any, receiver: Receiver) -> None:
    """A dead letter comes back with attempts 0 and goes out; other statuses and ids are refused."""
    receiver.respond = lambda hit: (500, {}) if hit.n == 1 else (200, {})
    gw: Gateway = await gateway_factory(webhook_url=receiver.url, webhook_max_attempts=1)
    await gw.pair()

    async def failed() -> list[dict[str, Any]]:
        return (await gw.http.get("/webhooks/deliveries?status=failed")).json()["data"]["deliveries"]

    (row,) = await gw.until(failed)
    assert (row["attempts"], row["lastError"]) == (1, "HTTP 500")
    r = await gw.post(f"/webhooks/deliveries/{row['id']}/retry")
    assert r.status_code == 200
    queued = r.json()["data"]
    assert (queued["id"], queued["status"], queued["attempts"]) == (row["id"], "pending", 0)
    assert queued["nextAttemptAt"] is not None
    await receiver.wait_count(2)

    async def delivered() -> dict[str, Any] | None:
        rows = (await gw.http.get("/webhooks/deliveries?status=delivered")).json()["data"]["deliveries"]
        return rows[0] if rows else None

    done = await gw.until(delivered)
    assert (done["id"], done["attempts"]) == (row["id"], 1)
    again = await gw.post(f"/webhooks/deliveries/{row['id']}/retry")
    assert again.status_code == 400 and again.json()["error"]["code"] == "INVALID_REQUEST"
    for bad, status, code in (
        ("999999", 404, "NOT_FOUND"),
        ("99999999999999999999999", 404, "NOT_FOUND"),
        ("abc", 400, "INVALID_REQUEST"),
        ("-1", 400, "INVALID_REQUEST"),
    ):
        r = await gw.post(f"/webhooks/deliveries/{bad}/retry")
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), bad
    r = await gw.http.get(f"/webhooks/deliveries/{row['id']}/retry")
    assert r.status_code == 405


async def test_accounts_see_and_retry_only_their_own_deliveries(gateway_factory: Any) -> None:
    """An account lists only rows of its devices; another's delivery id is NOT_FOUND to it; the admin sees all."""
    gw: Gateway = await gateway_factory(webhook_allow_private=True, webhook_max_attempts=1)
    tenants = Tenants(gw)
    try:
        alice, bob = await tenants.signup("alice"), await tenants.signup("bob")
        for client, token in ((alice.http, TOKEN), (bob.http, OTHER)):
            hook = {"token": token, "webhookUrl": f"http://127.0.0.1:9/{token}"}
            assert (await client.post("/devices", json=hook)).status_code == 200
            await gw.post(f"/sandbox/devices/{token}/scan")

        async def both_failed() -> list[dict[str, Any]] | None:
            rows = (await gw.http.get("/webhooks/deliveries?status=failed")).json()["data"]["deliveries"]
            return rows if len(rows) == 2 else None

        rows = await gw.until(both_failed)
        alice_rows = (await alice.http.get("/webhooks/deliveries")).json()["data"]["deliveries"]
        assert [r["token"] for r in alice_rows] == [TOKEN]
        bobs = next(r for r in rows if r["token"] == OTHER)
        r = await alice.http.post(f"/webhooks/deliveries/{bobs['id']}/retry")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "NOT_FOUND")
        assert (await alice.http.get(f"/webhooks/deliveries?token={OTHER}")).json()["data"]["deliveries"] == []
        r = await bob.http.post(f"/webhooks/deliveries/{bobs['id']}/retry")
        assert r.status_code == 200 and r.json()["data"]["status"] == "pending"
    finally:
        await tenants.aclose()
