"""Every incoming kind through the sandbox's HTTP routes to webhooks, in §11's shapes (CONTRACT §9, §11)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.webhook_receiver import Receiver

SENDER = "60171222333"
GROUP = "120363000000000001@g.us"


@pytest.fixture
async def hooked(gateway_factory: Any, receiver: Receiver) -> Gateway:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url, webhook_retry_base_ms=20)
    await gw.pair()
    return gw


def data_of(receiver: Receiver, event: str) -> list[dict[str, Any]]:
    return [h.json()["data"] for h in receiver.hits if h.json()["event"] == event]


async def incoming(gw: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    r = await gw.post(f"/sandbox/devices/{TOKEN}/incoming", body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_every_kind_reaches_the_webhook_with_its_content(hooked: Gateway, receiver: Receiver) -> None:
    """media, location, contacts, poll, a reply with mentions in a group: each `message.received` carries it."""
    gw = hooked
    blob = b"%PDF-1.4 invoice"
    doc = await incoming(
        gw,
        {
            "from": SENDER,
            "media": {"data": base64.b64encode(blob).decode(), "mimetype": "application/pdf", "filename": "inv.pdf"},
        },
    )
    await incoming(gw, {"from": SENDER, "location": {"latitude": 3.139, "longitude": 101.687, "name": "KLCC"}})
    await incoming(gw, {"from": SENDER, "contacts": [{"name": "Ann", "phones": ["+60 12-345 6789"]}]})
    await incoming(gw, {"from": SENDER, "poll": {"name": "Lunch?", "options": ["Rice", "Noodles"]}})
    await incoming(gw, {"from": SENDER, "chat": GROUP, "text": "@Bob ok", "replyTo": doc["id"], "mentions": [OTHER]})
    await receiver.wait(lambda hits: len(data_of(receiver, "message.received")) >= 5)
    # Concurrent deliveries to one URL may arrive in any order (CONTRACT §6 promises at least once, not order).
    by_type = {d["type"]: d for d in data_of(receiver, "message.received")}
    media, loc, contacts, poll, reply = (by_type[t] for t in ("document", "location", "contacts", "poll", "text"))
    assert (media["type"], media["media"]["mimetype"], media["media"]["size"], media["media"]["filename"]) == (
        "document",
        "application/pdf",
        len(blob),
        "inv.pdf",
    )
    assert media["fromMe"] is False and media["text"] is None
    assert (loc["type"], loc["location"]) == ("location", {"latitude": 3.139, "longitude": 101.687, "name": "KLCC"})
    assert (contacts["type"], contacts["contacts"]) == ("contacts", [{"name": "Ann", "phones": ["+60 12-345 6789"]}])
    assert poll["poll"] == {"name": "Lunch?", "options": ["Rice", "Noodles"], "selectableCount": 1}
    assert (reply["chat"], reply["isGroup"], reply["from"]) == (GROUP, True, SENDER)
    assert reply["replyTo"] == {"messageId": doc["id"], "from": SENDER}
    assert reply["mentions"] == [OTHER]
    kept = gw.rt.devices.get(TOKEN).driver._media  # the simulated WhatsApp keeps what the phone sent
    assert [hashlib.sha256(b).hexdigest() for b in kept.values()] == [hashlib.sha256(blob).hexdigest()]


async def test_lid_sender_from_me_edit_revoke_and_reaction_events(hooked: Gateway, receiver: Receiver) -> None:
    """An unresolvable LID is delivered (from null, fromLid); fromMe is `message.sent`; edits, revokes, reactions."""
    gw = hooked
    lid = await incoming(gw, {"fromLid": "123456789012345@lid", "text": "who"})
    mine = await incoming(gw, {"from": SENDER, "fromMe": True, "text": "typed on the phone"})
    r = await gw.post(f"/sandbox/devices/{TOKEN}/edit", {"id": lid["id"], "text": "who is this"})
    assert r.status_code == 200, r.text
    r = await gw.post(f"/sandbox/devices/{TOKEN}/revoke", {"id": lid["id"]})
    assert r.status_code == 200, r.text
    await incoming(gw, {"from": SENDER, "reaction": {"messageId": mine["id"], "emoji": "👍"}})
    await receiver.wait(lambda hits: len(data_of(receiver, "message.reaction")) >= 1)
    (received,) = data_of(receiver, "message.received")
    assert (received["from"], received["fromLid"], received["chat"]) == (
        None,
        "123456789012345@lid",
        "123456789012345@lid",
    )
    (sent,) = data_of(receiver, "message.sent")
    assert (sent["fromMe"], sent["from"], sent["chat"], sent["text"]) == (
        True,
        TOKEN,
        f"{SENDER}@s.whatsapp.net",
        "typed on the phone",
    )
    (edited,) = data_of(receiver, "message.edited")
    assert (edited["id"], edited["chat"], edited["text"]) == (lid["id"], "123456789012345@lid", "who is this")
    (revoked,) = data_of(receiver, "message.revoked")
    assert (revoked["id"], revoked["from"]) == (lid["id"], None)
    (reaction,) = data_of(receiver, "message.reaction")
    assert (reaction["messageId"], reaction["from"], reaction["emoji"]) == (mine["id"], SENDER, "👍")
    # contacts are filed by phone, from received messages: the LID sender and our own message add none
    contacts = (await gw.http.get(f"/contacts/{TOKEN}")).json()["data"]["contacts"]
    assert contacts == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"from": SENDER, "text": "a", "location": {"latitude": 1, "longitude": 2}}, "INVALID_MESSAGE"),
        ({"from": SENDER, "location": {"latitude": 91, "longitude": 2}}, "INVALID_MESSAGE"),
        ({"from": SENDER, "poll": {"name": "q", "options": ["only one"]}}, "INVALID_MESSAGE"),
        ({"from": SENDER, "poll": {"name": "q", "options": ["a", "a"]}}, "INVALID_MESSAGE"),
        ({"from": SENDER, "contacts": []}, "INVALID_MESSAGE"),
        ({"from": SENDER, "media": {"data": "not base64!"}}, "INVALID_MEDIA"),
        ({"from": SENDER, "media": {"data": ""}}, "INVALID_MEDIA"),
        ({"fromLid": "abc@lid", "text": "x"}, "INVALID_REQUEST"),
        ({"from": SENDER, "fromLid": "123456@lid", "text": "x"}, "INVALID_REQUEST"),
        ({"from": SENDER, "chat": "60123@s.whatsapp.net", "text": "x"}, "INVALID_REQUEST"),
        ({"from": SENDER, "fromMe": "yes", "text": "x"}, "INVALID_REQUEST"),
        ({"fromLid": "123456@lid", "fromMe": True, "text": "x"}, "INVALID_PHONE"),
    ],
)
async def test_bad_incoming_bodies_have_clear_codes(gw: Gateway, body: dict[str, Any], code: str) -> None:
    await gw.pair()
    r = await gw.post(f"/sandbox/devices/{TOKEN}/incoming", body)
    assert (r.status_code, r.json()["error"]["code"]) == (413 if code == "MEDIA_TOO_LARGE" else 400, code), r.text


async def test_edit_or_revoke_of_an_unknown_incoming_id_is_not_found(gw: Gateway) -> None:
    await gw.pair()
    for route, body in (("edit", {"id": "3EB0NOPE", "text": "x"}), ("revoke", {"id": "3EB0NOPE"})):
        r = await gw.post(f"/sandbox/devices/{TOKEN}/{route}", body)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "NOT_FOUND")
    r = await gw.post(f"/sandbox/devices/{TOKEN}/edit", {"id": "3EB0NOPE"})
    assert r.json()["error"]["code"] == "INVALID_MESSAGE"


async def test_sent_lists_the_type_of_a_text(gw: Gateway) -> None:
    await gw.pair()
    sent = (await gw.post("/messages", {"token": TOKEN, "to": OTHER, "text": "hi"})).json()["data"]
    listed = (await gw.http.get(f"/sandbox/devices/{TOKEN}/sent")).json()["data"]["messages"]
    assert [(m["id"], m["type"], m["text"]) for m in listed] == [(sent["messageId"], "text", "hi")]
