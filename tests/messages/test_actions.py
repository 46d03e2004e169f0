"""What the message store keeps up to date after a message is stored (CONTRACT §11, §12): edits and
revokes made through the API told like incoming ones, reactions on their target, a retried media
download, media links signed when read, and chats paged under concurrent inserts."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.api.errors import ApiError
from gateway.drivers.base import MediaRef
from gateway.messages.service import MessageService, decode_chats_cursor, decode_cursor, encode_cursor
from gateway.store import Store
from gateway.store.messages import NewMessage, record_sync
from tests.media import samples
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.webhook_receiver import Receiver

SENDER = "60171222333"
MSGS = f"/devices/{TOKEN}/messages"


@pytest.fixture
async def hooked(gateway_factory: Any, receiver: Receiver) -> Gateway:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url, webhook_retry_base_ms=20)
    await gw.pair()
    return gw


def events(receiver: Receiver, event: str) -> list[dict[str, Any]]:
    return [h.json()["data"] for h in receiver.hits if h.json()["event"] == event]


async def stored(gw: Gateway, msg_id: str, check: Any = None) -> dict[str, Any]:
    """The stored message once the pump has stored it (and ``check`` holds): polled with a deadline."""

    async def found() -> Any:
        r = await gw.http.get(f"{MSGS}/{msg_id}")
        if r.status_code == 200 and (check is None or check(r.json()["data"])):
            return r.json()["data"]
        return None

    data: dict[str, Any] = await gw.until(found)
    return data


async def incoming(gw: Gateway, body: dict[str, Any]) -> str:
    r = await gw.post(f"/sandbox/devices/{TOKEN}/incoming", body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    msg_id: str = data["id"] if "id" in data else data["messageId"]  # a reaction answers its target
    return msg_id


@pytest.mark.live
async def test_api_edits_and_revokes_are_told_like_incoming_ones(hooked: Gateway, receiver: Receiver) -> None:
    """PATCH and DELETE of a sent message: `message.edited` / `message.revoked` as webhooks and frames
    (fromMe, from = the device), and the stored message shows the new text and the deletion."""
    gw = hooked
    frames = await gw.ws()
    sent = (await gw.post("/messages", {"token": TOKEN, "to": OTHER, "text": "helo"})).json()["data"]["messageId"]
    await stored(gw, sent)
    assert (await gw.http.patch(f"{MSGS}/{sent}", json={"text": "hello"})).status_code == 200
    frame = await frames.event("message.edited", TOKEN)
    assert (frame["data"]["id"], frame["data"]["text"], frame["data"]["fromMe"]) == (sent, "hello", True)
    assert (await gw.http.delete(f"{MSGS}/{sent}")).status_code == 200
    frame = await frames.event("message.revoked", TOKEN)
    assert (frame["data"]["id"], frame["data"]["from"], frame["data"]["fromMe"]) == (sent, TOKEN, True)
    await receiver.wait(lambda hits: events(receiver, "message.revoked"))
    (edited,) = events(receiver, "message.edited")
    assert (edited["id"], edited["chat"], edited["text"], edited["from"]) == (
        sent,
        f"{OTHER}@s.whatsapp.net",
        "hello",
        TOKEN,
    )
    (revoked,) = events(receiver, "message.revoked")
    assert (revoked["id"], revoked["chat"]) == (sent, f"{OTHER}@s.whatsapp.net")
    msg = await stored(gw, sent)
    assert msg["text"] == "hello" and "editedAt" in msg and "revokedAt" in msg
    # deleting again changes nothing and tells nothing
    assert (await gw.http.delete(f"{MSGS}/{sent}")).status_code == 200
    assert len(events(receiver, "message.revoked")) == 1


async def test_incoming_edits_and_revokes_update_the_stored_message(hooked: Gateway) -> None:
    gw = hooked
    theirs = await incoming(gw, {"from": SENDER, "text": "helo"})
    await stored(gw, theirs)
    assert (await gw.post(f"/sandbox/devices/{TOKEN}/edit", {"id": theirs, "text": "hello"})).status_code == 200
    assert (await gw.post(f"/sandbox/devices/{TOKEN}/revoke", {"id": theirs})).status_code == 200
    msg = await stored(gw, theirs, lambda m: "revokedAt" in m)
    assert msg["text"] == "hello" and "editedAt" in msg


async def test_reactions_are_stored_on_the_message_they_react_to(hooked: Gateway, receiver: Receiver) -> None:
    """One reaction per person, the latest; "" removes it; this device's own reaction shows as fromMe."""
    gw = hooked
    sent = (await gw.post("/messages", {"token": TOKEN, "to": SENDER, "text": "your order"})).json()["data"]
    msg_id = sent["messageId"]
    await stored(gw, msg_id)
    await incoming(gw, {"from": SENDER, "reaction": {"messageId": msg_id, "emoji": "👍"}})
    msg = await stored(gw, msg_id, lambda m: m.get("reactions"))
    (reaction,) = msg["reactions"]
    assert (reaction["from"], reaction["emoji"], reaction["fromMe"]) == (SENDER, "👍", False)
    assert reaction["timestamp"].endswith("Z")
    await incoming(gw, {"from": SENDER, "reaction": {"messageId": msg_id, "emoji": "❤️"}})
    await incoming(gw, {"from": OTHER, "reaction": {"messageId": msg_id, "emoji": "😂"}})
    msg = await stored(gw, msg_id, lambda m: len(m.get("reactions", ())) == 2)
    assert [(r["from"], r["emoji"]) for r in msg["reactions"]] == [(SENDER, "❤️"), (OTHER, "😂")]
    await incoming(gw, {"from": SENDER, "reaction": {"messageId": msg_id, "emoji": ""}})
    msg = await stored(gw, msg_id, lambda m: len(m.get("reactions", ())) == 1)
    assert [r["from"] for r in msg["reactions"]] == [OTHER]
    # the list shows them too, and this device's reaction to an incoming message is on that message
    listed = (await gw.http.get(MSGS, params={"limit": 5})).json()["data"]["messages"]
    assert next(m for m in listed if m["id"] == msg_id)["reactions"] == msg["reactions"]
    theirs = await incoming(gw, {"from": SENDER, "text": "thanks!"})
    await stored(gw, theirs)
    r = await gw.post("/messages", {"token": TOKEN, "to": SENDER, "reaction": {"messageId": theirs, "emoji": "🙏"}})
    assert r.status_code == 200, r.text
    msg = await stored(gw, theirs, lambda m: m.get("reactions"))
    assert [(r["from"], r["emoji"], r["fromMe"]) for r in msg["reactions"]] == [(TOKEN, "🙏", True)]
    # a reaction to a message never stored is still told, and stores nothing
    await incoming(gw, {"from": SENDER, "reaction": {"messageId": "3EB0NEVERSTORED", "emoji": "👍"}})
    await receiver.wait(
        lambda hits: any(e["messageId"] == "3EB0NEVERSTORED" for e in events(receiver, "message.reaction"))
    )
    assert (await gw.http.get(f"{MSGS}/3EB0NEVERSTORED")).status_code == 404


def _exp(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["exp"][0])


async def test_stored_media_links_are_signed_when_read(hooked: Gateway) -> None:
    """A link signed when the photo arrived expires; reading the message later signs a fresh one."""
    gw = hooked
    jpeg = samples.jpeg()
    media = {"data": base64.b64encode(jpeg).decode(), "mimetype": "image/jpeg"}
    msg_id = await incoming(gw, {"from": SENDER, "media": media})
    first = (await stored(gw, msg_id))["media"]
    assert first["status"] == "stored"
    later = time.time() + 2 * gw.settings.media_url_ttl_s  # the link signed on arrival has expired
    gw.rt.media.clock = lambda: later
    msg = await stored(gw, msg_id)
    assert _exp(msg["media"]["url"]) > later
    chats = (await gw.http.get(f"/devices/{TOKEN}/chats")).json()["data"]["chats"]
    assert _exp(chats[0]["lastMessage"]["media"]["url"]) > later
    r = await gw.anon.get(msg["media"]["url"].removeprefix(gw.settings.base_url))
    assert r.status_code == 200 and r.content == jpeg
    r = await gw.anon.get(first["url"].removeprefix(gw.settings.base_url))
    assert r.status_code == 403  # what was signed at receive time is stale now


async def test_a_retried_download_updates_the_stored_message(hooked: Gateway) -> None:
    gw = hooked
    driver = gw.rt.devices.get(TOKEN).driver
    real = driver.download

    async def broken(ref: MediaRef) -> bytes:
        raise ConnectionError("the CDN is down")

    driver.download = broken
    jpeg = samples.jpeg()
    msg_id = await incoming(gw, {"from": SENDER, "media": {"data": base64.b64encode(jpeg).decode()}})
    failed = (await stored(gw, msg_id))["media"]
    assert (failed["status"], failed["url"], failed["id"]) == ("failed", None, None)
    driver.download = real
    r = await gw.post(f"{MSGS}/{msg_id}/media")
    assert r.status_code == 200, r.text
    media = (await stored(gw, msg_id))["media"]
    assert (media["status"], media["id"], media["sha256"]) == (
        "stored",
        r.json()["data"]["id"],
        r.json()["data"]["sha256"],
    )
    fetched = await gw.anon.get(media["url"].removeprefix(gw.settings.base_url))
    assert fetched.status_code == 200 and fetched.content == jpeg


# --- chats paging under concurrent inserts -------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path)
    yield s
    await s.close()


def _in(store_seq: int, chat: int) -> NewMessage:
    ts = 1000.0 + store_seq
    jid = f"601900{chat:05d}@s.whatsapp.net"
    return NewMessage(TOKEN, f"M{store_seq:05d}", jid, "in", "text", "hi", ts, "received", (("received", ts),))


async def test_chats_pages_have_no_duplicates_or_gaps_when_chats_move_between_pages(store: Store) -> None:
    """30 chats, pages of 7: between two fetches a chat not listed yet, a chat already listed and a new
    chat get a message. Every chat that existed at the first page is listed exactly once, in the first
    page's order (the new chats show at the top of a fresh first page)."""
    seq = 0

    async def message_in(chat: int) -> None:
        nonlocal seq
        seq += 1
        m = _in(seq, chat)
        await store.db.run(lambda c: record_sync(c, m))

    for chat in range(30):
        await message_in(chat)
    svc = MessageService(store)
    seen: list[str] = []
    cursor: tuple[int | None, int | None] = (None, None)
    movers = iter([(3, 25, 30), (10, 20, 31), (0, 12, 32), (1, 5, 33)])
    pages = 0
    while True:
        chats, next_cursor = await svc.chats(TOKEN, 7, cursor)
        pages += 1
        seen += [c["jid"] for c in chats]
        if next_cursor is None:
            break
        cursor = decode_chats_cursor(next_cursor)
        for chat in next(movers):
            await message_in(chat)
    assert pages == 5
    assert seen == [f"601900{chat:05d}@s.whatsapp.net" for chat in reversed(range(30))]
    fresh, _ = await svc.chats(TOKEN, 5)
    assert [c["jid"] for c in fresh][:4] == [f"601900{chat:05d}@s.whatsapp.net" for chat in (33, 5, 1, 32)]


def test_chats_cursors_carry_their_snapshot_and_older_ones_still_page() -> None:
    """A chats cursor is (position, snapshot); one given out before snapshots pages by position alone;
    a messages cursor never carries a snapshot, and a chats cursor is not a messages one."""
    assert decode_chats_cursor(encode_cursor("c", 40, 90)) == (40, 90)
    assert decode_chats_cursor(encode_cursor("c", 40)) == (40, None)
    assert decode_chats_cursor(None) == (None, None)
    assert decode_cursor("m", encode_cursor("m", 7)) == 7
    for bad in (encode_cursor("m", 7, 9), encode_cursor("c", 7)):
        with pytest.raises(ApiError):
            decode_cursor("m", bad)
    for bad in (encode_cursor("m", 7), "Yzo0MDo5MDox", "!!", "Yzo" + "1" * 80):
        with pytest.raises(ApiError):
            decode_chats_cursor(bad)
