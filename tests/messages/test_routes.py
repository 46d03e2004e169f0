"""The message store's routes (CONTRACT §12) and the new kinds of POST /messages (§11), on the sandbox."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.store.messages import NewMessage
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.webhook_receiver import Receiver

SENDER = "60171222333"
SENDER_JID = f"{SENDER}@s.whatsapp.net"
OTHER_JID = f"{OTHER}@s.whatsapp.net"
MSGS = f"/devices/{TOKEN}/messages"


@pytest.fixture
async def gwp(gw: Gateway) -> Gateway:
    await gw.pair()
    return gw


async def get(gw: Gateway, path: str, code: int = 200, **params: Any) -> Any:
    r = await gw.http.get(path, params=params)
    assert r.status_code == code, r.text
    return r.json()["data"] if code == 200 else r.json()["error"]["code"]


async def send(gw: Gateway, body: dict[str, Any], code: int = 200) -> Any:
    r = await gw.post("/messages", {"token": TOKEN, "to": OTHER, **body})
    assert r.status_code == code, r.text
    return r.json()["data"] if code == 200 else r.json()["error"]["code"]


async def incoming(gw: Gateway, text: str, sender: str = SENDER, **extra: Any) -> str:
    r = await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": sender, "name": "Sam", "text": text, **extra})
    assert r.status_code == 200, r.text
    msg_id: str = r.json()["data"]["id"]
    await stored(gw, msg_id)  # the pump stores it after the route answers
    return msg_id


async def stored(gw: Gateway, msg_id: str, status: str | None = None) -> dict[str, Any]:
    async def found() -> Any:
        r = await gw.http.get(f"{MSGS}/{msg_id}")
        if r.status_code == 200 and (status is None or r.json()["data"]["status"] == status):
            return r.json()["data"]
        return None

    data: dict[str, Any] = await gw.until(found)
    return data


async def test_a_send_goes_pending_sent_delivered_read_with_status_events(
    gateway_factory: Any, receiver: Receiver
) -> None:
    """The stored message follows its receipts; each change is a `message.status` webhook {id, chat, status, at}."""
    gw = await gateway_factory(webhook_url=receiver.url, webhook_retry_base_ms=20)
    await gw.pair()
    sent = await send(gw, {"text": "hello"})
    msg = await stored(gw, sent["messageId"], "read")
    assert (msg["direction"], msg["fromMe"], msg["from"], msg["chat"], msg["text"]) == (
        "out",
        True,
        TOKEN,
        OTHER_JID,
        "hello",
    )
    assert [h["status"] for h in msg["statusHistory"]] == ["pending", "sent", "delivered", "read"]
    hits = await receiver.wait(lambda hits: sum(h.json()["event"] == "message.status" for h in hits) >= 3)
    statuses = [h.json()["data"] for h in hits if h.json()["event"] == "message.status"]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert all(list(s) == ["id", "chat", "status", "at"] and s["id"] == sent["messageId"] for s in statuses)


async def test_list_filters_and_cursor(gwp: Gateway) -> None:
    """Newest first; chat/direction/type/since filters; cursor pages without gaps; bad parameters are 400."""
    gw = gwp
    ids = [await incoming(gw, f"in {i}") for i in range(5)]
    await incoming(gw, "elsewhere", sender="60198765431")
    out = await send(gw, {"text": "reply"})
    await stored(gw, out["messageId"])
    page = await get(gw, MSGS, limit=3)
    assert len(page["messages"]) == 3 and page["nextCursor"]
    assert page["messages"][0]["id"] == out["messageId"]
    rest = await get(gw, MSGS, limit=10, cursor=page["nextCursor"])
    assert rest["nextCursor"] is None
    assert [m["id"] for m in page["messages"] + rest["messages"]][-5:] == ids[::-1]
    only_in = await get(gw, MSGS, direction="in", chat=SENDER)
    assert [m["id"] for m in only_in["messages"]] == ids[::-1]
    assert {m["direction"] for m in only_in["messages"]} == {"in"}
    assert (await get(gw, MSGS, type="poll"))["messages"] == []
    assert len((await get(gw, MSGS, since="2000-01-01T00:00:00Z", until="2999-01-01T00:00:00+08:00"))["messages"]) == 7
    assert (await get(gw, MSGS, since="2999-01-01T00:00:00Z"))["messages"] == []
    for params in (
        {"cursor": "bm9wZQ"},
        {"cursor": "!!"},
        {"limit": "0"},
        {"limit": "501"},
        {"direction": "sideways"},
        {"type": "gif"},
        {"since": "yesterday"},
        {"until": "2026-01-01T00:00:00"},
    ):
        assert await get(gw, MSGS, 400, **params) == "INVALID_REQUEST", params
    chats_cursor = (await get(gw, f"/devices/{TOKEN}/chats", limit=1))["nextCursor"]
    assert await get(gw, MSGS, 400, cursor=chats_cursor) == "INVALID_REQUEST"  # a chats cursor is not a messages one


async def test_one_message_and_unknown_ids(gwp: Gateway) -> None:
    msg_id = await incoming(gwp, "hi")
    msg = await get(gwp, f"{MSGS}/{msg_id}")
    assert (msg["status"], msg["direction"], msg["from"], msg["fromName"], msg["type"]) == (
        "received",
        "in",
        SENDER,
        "Sam",
        "text",
    )
    assert [h["status"] for h in msg["statusHistory"]] == ["received"]
    assert await get(gwp, f"{MSGS}/3EB0NOTSTORED", 404) == "NOT_FOUND"


async def test_edit_and_revoke_own_messages_only(gwp: Gateway) -> None:
    gw = gwp
    sent = (await send(gw, {"text": "helo"}))["messageId"]
    await stored(gw, sent)
    r = await gw.http.patch(f"{MSGS}/{sent}", json={"text": "hello"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["text"] == "hello" and "editedAt" in r.json()["data"]
    sandbox = (await get(gw, f"/sandbox/devices/{TOKEN}/sent"))["messages"]
    assert sandbox[-1]["text"] == "hello" and "editedAt" in sandbox[-1]
    theirs = await incoming(gw, "not yours")
    r = await gw.http.patch(f"{MSGS}/{theirs}", json={"text": "x"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_REQUEST")
    r = await gw.http.patch(f"{MSGS}/{sent}", json={"text": "  "})
    assert r.json()["error"]["code"] == "INVALID_MESSAGE"
    # older than 15 minutes
    old = NewMessage(TOKEN, "3EB0OLD", OTHER_JID, "out", "text", "x", time.time() - 16 * 60, "sent", (), True)
    await gw.rt.store.record_message(old)
    r = await gw.http.patch(f"{MSGS}/3EB0OLD", json={"text": "y"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_REQUEST") and "15 minutes" in r.text
    r = await gw.http.delete(f"{MSGS}/{theirs}")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_REQUEST")
    r = await gw.http.delete(f"{MSGS}/{sent}")
    assert r.status_code == 200 and "revokedAt" in r.json()["data"]
    assert (await get(gw, f"/sandbox/devices/{TOKEN}/sent"))["messages"][-1]["revoked"] is True
    assert (await gw.http.delete(f"{MSGS}/3EB0NOPE")).json()["error"]["code"] == "NOT_FOUND"


async def test_mark_read_and_chats(gwp: Gateway) -> None:
    """Reading an incoming message reads its chat up to it; chats list the last message and unread counts."""
    gw = gwp
    first, second, third = [await incoming(gw, f"m{i}") for i in range(3)]
    await incoming(gw, "other chat", sender="60198765431", name=None)
    chats = (await get(gw, f"/devices/{TOKEN}/chats"))["chats"]
    assert [(c["jid"], c["unread"]) for c in chats] == [("60198765431@s.whatsapp.net", 1), (SENDER_JID, 3)]
    assert chats[1]["lastMessage"]["id"] == third and chats[1]["name"] == "Sam" and chats[1]["isGroup"] is False
    r = await gw.post(f"{MSGS}/{second}/read")
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"id": second, "chat": SENDER_JID, "read": [first, second]}
    driver = gw.rt.devices.get(TOKEN).driver
    assert list(driver.reads) == [(SENDER_JID, (second, first), None)]
    chats = (await get(gw, f"/devices/{TOKEN}/chats"))["chats"]
    assert {c["jid"]: c["unread"] for c in chats}[SENDER_JID] == 1
    assert (await get(gw, f"{MSGS}/{first}"))["status"] == "read"
    page = await get(gw, f"/devices/{TOKEN}/chats", limit=1)
    assert len(page["chats"]) == 1 and page["nextCursor"]
    assert len((await get(gw, f"/devices/{TOKEN}/chats", cursor=page["nextCursor"]))["chats"]) == 1
    out = (await send(gw, {"text": "x"}))["messageId"]
    await stored(gw, out)
    assert (await gw.post(f"{MSGS}/{out}/read")).json()["error"]["code"] == "INVALID_REQUEST"


async def test_presence(gwp: Gateway) -> None:
    r = await gwp.post(f"/devices/{TOKEN}/chats/{OTHER_JID}/presence", {"state": "recording"})
    assert r.status_code == 200 and r.json()["data"] == {"token": TOKEN, "chat": OTHER_JID, "state": "recording"}
    assert list(gwp.rt.devices.get(TOKEN).driver.presence) == [(OTHER_JID, "recording")]
    r = await gwp.post(f"/devices/{TOKEN}/chats/{OTHER}/presence", {"state": "dancing"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_REQUEST")


async def test_groups_create_info_participants_invite_leave(gwp: Gateway) -> None:
    gw = gwp
    base = f"/devices/{TOKEN}/groups"
    r = await gw.post(base, {"name": "Deals", "participants": [OTHER, "017-122 2333"]})
    assert r.status_code == 200, r.text
    group = r.json()["data"]
    jid = group["jid"]
    assert {p["phone"] for p in group["participants"]} == {TOKEN, OTHER, SENDER}
    assert jid in {g["jid"] for g in (await get(gw, base))["groups"]}
    info = await get(gw, f"{base}/{jid}")
    assert (info["name"], info["participantCount"]) == ("Deals", 3)
    r = await gw.post(f"{base}/{jid}/participants", {"action": "remove", "participants": [OTHER, "60198765431"]})
    assert r.json()["data"]["results"] == [
        {"phone": OTHER, "ok": True, "error": None},
        {"phone": "60198765431", "ok": False, "error": "not a participant"},
    ]
    link = (await get(gw, f"{base}/{jid}/invite"))["link"]
    assert link.startswith("https://chat.whatsapp.com/")
    assert (await get(gw, f"{base}/{jid}/invite", revoke="true"))["link"] != link
    assert (await gw.http.delete(f"{base}/{jid}")).json()["data"] == {"jid": jid, "left": True}
    assert await get(gw, f"{base}/{jid}", 404) == "NOT_FOUND"
    assert await get(gw, f"{base}/not-a-group", 400) == "INVALID_REQUEST"
    r = await gw.post(f"{base}/{jid}/participants", {"action": "kick", "participants": [OTHER]})
    assert r.json()["error"]["code"] == "INVALID_REQUEST"
    r = await gw.post(base, {"name": "x", "participants": ["12"]})
    assert r.json()["error"]["code"] == "INVALID_PHONE"
    r = await gw.http.get(f"{base}/120363000000000002@g.us/invite")
    assert r.json()["error"]["code"] == "INVALID_REQUEST"  # not an admin there


async def test_every_kind_on_post_messages_with_reply_and_mentions(gwp: Gateway) -> None:
    """location, contacts, poll, a reaction to a stored id, a reply quoting a stored id: as WhatsApp got them."""
    gw = gwp
    theirs = await incoming(gw, "can you send the address?", sender=OTHER)
    await stored(gw, theirs)
    loc = await send(gw, {"location": {"latitude": 3.1579, "longitude": 101.7116, "name": "KLCC"}, "replyTo": theirs})
    await send(gw, {"contacts": [{"name": "Ann", "phones": ["+60 12-345 6789"], "email": "ann@x.co"}]})
    await send(gw, {"poll": {"name": "When?", "options": ["Mon", "Tue"], "selectableCount": 1}})
    await send(gw, {"reaction": {"messageId": theirs, "emoji": "👍"}})
    await send(gw, {"text": "@60198765432 see above", "replyTo": theirs, "mentions": [OTHER]})
    sent = (await get(gw, f"/sandbox/devices/{TOKEN}/sent"))["messages"]
    assert [m["type"] for m in sent] == ["location", "contacts", "poll", "reaction", "text"]
    assert sent[0]["location"]["name"] == "KLCC" and sent[0]["replyTo"] == {"messageId": theirs}
    assert sent[3]["reaction"] == {"messageId": theirs, "emoji": "👍"} and sent[3]["to"] == OTHER_JID
    assert (sent[4]["replyTo"], sent[4]["mentions"]) == ({"messageId": theirs}, [OTHER])
    msg = await stored(gw, loc["messageId"])
    assert (msg["type"], msg["location"]["latitude"], msg["replyTo"]) == (
        "location",
        3.1579,
        {"messageId": theirs, "from": OTHER},
    )

    async def out_types() -> list[str]:
        return sorted(m["type"] for m in (await get(gw, MSGS, direction="out"))["messages"])

    await gw.until(lambda: _equals(out_types(), ["contacts", "location", "poll", "reaction", "text"]))


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": "a", "replyTo": "3EB0UNKNOWN"}, 404, "NOT_FOUND"),
        ({"reaction": {"messageId": "3EB0UNKNOWN", "emoji": "👍"}}, 404, "NOT_FOUND"),
        ({"text": "a", "poll": {"name": "q", "options": ["a", "b"]}}, 400, "INVALID_MESSAGE"),
        ({}, 400, "INVALID_MESSAGE"),
        ({"poll": {"name": "q", "options": ["a"]}}, 400, "INVALID_MESSAGE"),
        ({"poll": {"name": "q", "options": [str(i) for i in range(13)]}}, 400, "INVALID_MESSAGE"),
        ({"poll": {"name": "q", "options": ["a", "b"], "selectableCount": 3}}, 400, "INVALID_MESSAGE"),
        ({"location": {"latitude": 0, "longitude": 181}}, 400, "INVALID_MESSAGE"),
        ({"location": {"latitude": "north", "longitude": 1}}, 400, "INVALID_REQUEST"),
        ({"contacts": [{"name": "A", "phones": ["call me"]}]}, 400, "INVALID_MESSAGE"),
        ({"text": "a", "mentions": ["12"]}, 400, "INVALID_PHONE"),
    ],
)
async def test_bad_sends_have_clear_codes_and_send_nothing(
    gwp: Gateway, body: dict[str, Any], status: int, code: str
) -> None:
    assert await send(gwp, body, status) == code
    assert (await get(gwp, f"/sandbox/devices/{TOKEN}/sent"))["messages"] == []


async def test_retention_zero_stores_nothing(gateway_factory: Any) -> None:
    gw = await gateway_factory(message_retention_days=0)
    await gw.pair()
    sent = await send(gw, {"text": "hello"})  # its row would be queued on the group commit before the reply
    await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": SENDER, "text": "hi"})

    async def contact_filed() -> bool:
        # written in the same transaction that would store the incoming message (and after the send's):
        # once it is there, anything that was going to be stored would be (a counter is bumped before)
        return bool((await get(gw, f"/contacts/{TOKEN}"))["contacts"])

    await gw.until(contact_filed)
    assert await get(gw, f"{MSGS}/{sent['messageId']}", 404) == "NOT_FOUND"
    assert (await get(gw, MSGS))["messages"] == []
    assert (await get(gw, f"/devices/{TOKEN}/chats"))["chats"] == []


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
