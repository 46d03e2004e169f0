"""The console's Messages section (issue 15): a device's chats with their last message and unread
counts, the conversation in order with delivery ticks, paged back, live (messages in and out, ticks,
edits, deletions, reactions, media), replies and mark-read; and the device's live activity filled from
the message store on load (issue 18). Photographed at desktop and phone widths, light and dark.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from gateway.store import Store
from gateway.store.messages import NewMessage, mark_read_sync, record_sync
from tests.media import samples
from tests.support.poll import until as poll_until

from .conftest import DESKTOP, PHONE, GatewayProcess
from .test_operator_console import connected_device, open_device, snap_variants
from .test_pairing_page import sign_in

pytestmark = pytest.mark.browser

TOKEN = "60123456900"
ALI, BEE = "60171222444", "60171222555"
ALI_JID, BEE_JID = f"{ALI}@s.whatsapp.net", f"{BEE}@s.whatsapp.net"
OLD_MESSAGES = 45  # more than a page (30): the oldest need "Load older messages"


def _seed(now: float) -> list[NewMessage]:
    """Ali's chat: 45 messages, alternating, the newest outgoing ones sent ✓, delivered ✓✓, read ✓✓ and
    failed; the last two incoming unread. Bee's chat: two unread messages, the most recent chat."""
    rows: list[NewMessage] = []
    start = now - 3600
    for i in range(OLD_MESSAGES):
        ts = start + i * 60
        if i % 2 == 0:
            rows.append(
                NewMessage(TOKEN, f"3AIN{i:016d}", ALI_JID, "in", "text", f"Ali says {i}", ts, "received",
                           (("received", ts),), sender=ALI, sender_name="Ali")
            )  # fmt: skip
            continue
        status = {OLD_MESSAGES - 2: "sent", OLD_MESSAGES - 4: "delivered", OLD_MESSAGES - 6: "failed"}.get(i, "read")
        rows.append(
            NewMessage(TOKEN, f"3EB0{i:016d}", ALI_JID, "out", "text", f"We say {i}", ts, status,
                       (("pending", ts), (status, ts + 1)), True, TOKEN,
                       error="send failed: not on WhatsApp" if status == "failed" else None)
        )  # fmt: skip
    for i in range(2):
        ts = start + OLD_MESSAGES * 60 + i
        rows.append(
            NewMessage(TOKEN, f"3ABEE{i:015d}", BEE_JID, "in", "text", f"Bee asks {i}", ts, "received",
                       (("received", ts),), sender=BEE, sender_name="Bee")
        )  # fmt: skip
    return rows


async def seeded_gateway(spawn: Callable[..., GatewayProcess]) -> GatewayProcess:
    """A linked device whose store already holds the two chats (written while the gateway is stopped)."""
    gw = spawn()
    async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=10) as api:
        await connected_device(api, TOKEN, "Front desk")
    gw.stop()
    store = await Store.open(gw.data_dir)
    try:
        rows = _seed(time.time())

        def seed(conn: sqlite3.Connection) -> None:
            seqs = {m.id: record_sync(conn, m) for m in rows}
            # Ali's older messages were read on the phone: the last two stay unread
            mark_read_sync(conn, TOKEN, ALI_JID, seqs[f"3AIN{OLD_MESSAGES - 5:016d}"] or 0, time.time())

        await store.db.run(seed)
    finally:
        await store.close()
    gw.start()
    async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=10) as api:

        async def connected() -> bool:
            return bool((await api.get(f"/devices/{TOKEN}")).json()["data"]["status"] == "connected")

        await poll_until(connected, 15, "the device reconnected after the restart")
    return gw


async def until(fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    return await poll_until(fn, timeout)


def bubble(page: Any, text: str) -> Any:
    return page.locator("#inbox-messages-list .bubble").filter(has_text=text)


async def test_inbox_chats_conversation_ticks_paging_live_and_reply(
    spawn_gateway: Callable[..., GatewayProcess], new_page: Any
) -> None:
    gw = await seeded_gateway(spawn_gateway)
    api = httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=10)
    try:
        page = await new_page(DESKTOP)
        await sign_in(page, gw)
        await page.get_by_role("link", name="Messages", exact=True).click()
        await expect(page.get_by_role("heading", name="Messages", exact=True)).to_be_visible()
        assert page.url.endswith(f"#/messages/{TOKEN}")

        # the chats: most recent first, last message, unread counts
        chats = page.locator("#inbox-chats .chat-item")
        await expect(chats).to_have_count(2)
        await expect(chats.nth(0)).to_contain_text("Bee")
        await expect(chats.nth(0)).to_contain_text("Bee asks 1")
        await expect(chats.nth(0).locator(".unread")).to_have_text("2")
        await expect(chats.nth(1)).to_contain_text("Ali")
        await expect(chats.nth(1).locator(".unread")).to_have_text("2")
        await snap_variants(page, "inbox-chats")

        # open Ali's chat: the newest page in order, ticks on what we sent, read receipts for the unread
        await chats.nth(1).get_by_role("button").click()
        assert page.url.endswith(f"#/messages/{TOKEN}/{ALI_JID.replace('@', '%40')}")
        bubbles = page.locator("#inbox-messages-list .bubble")
        await expect(bubbles).to_have_count(30)
        await expect(bubbles.last).to_contain_text(f"Ali says {OLD_MESSAGES - 1}")
        await expect(bubbles.first).to_contain_text(f"We say {OLD_MESSAGES - 30}")
        texts = await page.locator("#inbox-messages-list .bubble-text").all_inner_texts()
        numbers = [int(t.rsplit(" ", 1)[1]) for t in texts]
        assert numbers == sorted(numbers)  # oldest first
        n = OLD_MESSAGES
        for i, status, label in ((n - 2, "sent", "Sent"), (n - 4, "delivered", "Delivered"), (n - 8, "read", "Read")):
            tick = bubble(page, f"We say {i}").locator(".tick")
            await expect(tick).to_have_attribute("data-status", status)
            await expect(tick).to_have_attribute("aria-label", label)
        await expect(bubble(page, f"We say {n - 6}").locator(".tick")).to_have_attribute(
            "aria-label", "Not sent: send failed: not on WhatsApp"
        )
        await expect(bubble(page, "We say 43").locator(".tick")).to_have_text("✓")
        await expect(bubble(page, "We say 41").locator(".tick")).to_have_text("✓✓")
        await expect(chats.nth(1).locator(".unread")).to_have_count(0)  # opened: read
        await bubble(page, f"We say {n - 8}").scroll_into_view_if_needed()
        await snap_variants(page, "inbox-ticks")
        read = await api.get(f"/devices/{TOKEN}/messages/3AIN{n - 1:016d}")
        assert read.json()["data"]["status"] == "read"
        assert (await api.get(f"/devices/{TOKEN}/chats")).json()["data"]["chats"][1]["unread"] == 0

        # paged back: the 15 older ones come before, the reader keeps their place
        await page.get_by_role("button", name="Load older messages").click()
        await expect(bubbles).to_have_count(OLD_MESSAGES)
        await expect(bubbles.first).to_contain_text("Ali says 0")
        await expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()

        # live: a new incoming message appears (and is read at once: the chat is open)
        r = await api.post(
            f"/sandbox/devices/{TOKEN}/incoming", json={"from": ALI, "name": "Ali", "text": "Are you there?"}
        )
        assert r.status_code == 200, r.text
        incoming_id = r.json()["data"]["id"]
        await expect(bubbles.last).to_contain_text("Are you there?")
        await until(
            lambda: _status(api, incoming_id, "read"),
        )
        # another chat's message moves that chat up with one more unread
        assert (
            await api.post(f"/sandbox/devices/{TOKEN}/incoming", json={"from": BEE, "text": "Hello?"})
        ).status_code == 200
        await expect(chats.nth(0).locator(".unread")).to_have_text("3")
        await expect(chats.nth(0)).to_contain_text("Hello?")

        # reply from the conversation: one tick at once, then delivered and read, live
        await page.get_by_label("Reply", exact=True).fill("On my way")
        await page.get_by_label("Reply", exact=True).press("Enter")
        mine = bubble(page, "On my way")
        await expect(mine).to_have_count(1)
        await expect(mine.locator(".tick")).to_have_attribute("data-status", "read")
        await expect(mine.locator(".tick")).to_have_class(re.compile("tick-read"))
        await expect(page.get_by_label("Reply", exact=True)).to_have_value("")

        # a reply quoting a message
        await bubble(page, "Are you there?").get_by_role("button", name=re.compile("^Reply to")).click()
        await expect(page.locator("#inbox-quote")).to_contain_text("Are you there?")
        await page.get_by_label("Reply", exact=True).fill("Yes, here")
        await page.get_by_role("button", name="Send", exact=True).click()
        await expect(bubble(page, "Yes, here").locator(".bubble-quote")).to_contain_text("Are you there?")
        sent = (await api.get(f"/sandbox/devices/{TOKEN}/sent")).json()["data"]["messages"]
        assert sent[-1]["text"] == "Yes, here" and sent[-1]["replyTo"] == {"messageId": incoming_id}

        # this device's reaction (sent through the API) shows on the message, not as a bubble of its own
        reaction = {"messageId": incoming_id, "emoji": "🙏"}
        assert (await api.post("/messages", json={"token": TOKEN, "to": ALI, "reaction": reaction})).status_code == 200
        await expect(bubble(page, "Are you there?").locator(".bubble-reactions")).to_have_count(1)
        await expect(page.locator("#inbox-messages-list .bubble").filter(has_text="Reacted")).to_have_count(0)

        # a send made elsewhere (the API), then edited, then a reaction, then deleted: all live
        r = await api.post("/messages", json={"token": TOKEN, "to": ALI, "text": "Invoice attached"})
        assert r.status_code == 200, r.text
        api_id = r.json()["data"]["messageId"]
        await expect(bubble(page, "Invoice attached")).to_have_count(1)
        assert (
            await api.patch(f"/devices/{TOKEN}/messages/{api_id}", json={"text": "Invoice #7 attached"})
        ).status_code == 200
        await expect(bubble(page, "Invoice #7 attached")).to_contain_text("edited")
        r = await api.post(
            f"/sandbox/devices/{TOKEN}/incoming", json={"from": ALI, "reaction": {"messageId": api_id, "emoji": "👍"}}
        )
        assert r.status_code == 200, r.text
        await expect(bubble(page, "Invoice #7 attached").locator(".bubble-reactions")).to_have_text("👍")

        # incoming media: a thumbnail of the signed link
        photo = {"data": base64.b64encode(samples.jpeg()).decode(), "mimetype": "image/jpeg", "caption": "the parcel"}
        assert (
            await api.post(f"/sandbox/devices/{TOKEN}/incoming", json={"from": ALI, "media": photo})
        ).status_code == 200
        thumb = bubble(page, "the parcel").locator("img.media-thumb")
        await expect(thumb).to_be_visible()
        await until(lambda: _loaded(thumb))
        await snap_variants(page, "inbox-conversation")

        assert (await api.delete(f"/devices/{TOKEN}/messages/{api_id}")).status_code == 200
        await expect(page.locator("#inbox-messages-list .bubble-deleted")).to_have_count(1)
        await expect(bubble(page, "Invoice #7")).to_have_count(0)

        # a reload lands on the same conversation; at phone width the list gives way to it
        await page.reload()
        await expect(bubble(page, "Yes, here")).to_have_count(1)
        await page.set_viewport_size(PHONE)
        await expect(page.locator("#inbox-chats")).to_be_hidden()
        await page.get_by_role("button", name="← Chats").click()
        await expect(page.locator("#inbox-chats")).to_be_visible()
        await expect(page.locator("#inbox-conversation")).to_be_hidden()
    finally:
        await api.aclose()


async def _status(api: httpx.AsyncClient, msg_id: str, status: str, token: str = TOKEN) -> bool:
    r = await api.get(f"/devices/{token}/messages/{msg_id}")
    return r.status_code == 200 and r.json()["data"]["status"] == status


async def _loaded(img: Any) -> bool:
    return bool(await img.evaluate("(i) => i.complete && i.naturalWidth > 0"))


async def test_a_group_chat_is_named_and_its_messages_say_who_wrote_them(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    token = "60123456904"
    await connected_device(api, token, "Groups")
    created = await api.post(f"/devices/{token}/groups", json={"name": "Deals", "participants": [ALI, BEE]})
    assert created.status_code == 200, created.text
    group = created.json()["data"]["jid"]
    r = await api.post(
        f"/sandbox/devices/{token}/incoming", json={"from": ALI, "name": "Ali", "chat": group, "text": "in the group"}
    )
    assert r.status_code == 200, r.text
    await until(lambda: _status(api, r.json()["data"]["id"], "received", token))
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await page.goto(f"{gateway.base_url}/#/messages/{token}")
    await page.locator("#inbox-chats button").filter(has_text="Deals").click()
    await expect(bubble(page, "in the group").locator(".bubble-sender")).to_have_text(f"Ali (+{ALI})")


async def test_switching_devices_in_messages_closes_the_conversation(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """The device picker switches the inbox: the other device's chats, no conversation, an empty reply."""
    first, second = "60123456901", "60123456902"
    await connected_device(api, first, "Inbox A")
    await connected_device(api, second, "Inbox B")
    r = await api.post(f"/sandbox/devices/{first}/incoming", json={"from": ALI, "name": "Ali", "text": "for A"})
    assert r.status_code == 200, r.text
    await until(lambda: _status(api, r.json()["data"]["id"], "received", first))  # the pump stores it after the reply
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await page.goto(f"{gateway.base_url}/#/messages/{first}")
    await page.locator("#inbox-chats button").filter(has_text="Ali").click()
    await expect(bubble(page, "for A")).to_have_count(1)
    await page.get_by_label("Reply", exact=True).fill("half-typed")
    await page.get_by_label("Messages of", exact=True).select_option(second)
    await expect(page.locator("#inbox-conversation")).to_be_hidden()
    await expect(page.locator("#inbox-chats-empty")).to_be_visible()
    assert page.url.endswith(f"#/messages/{second}")
    await page.get_by_label("Messages of", exact=True).select_option(first)
    await page.locator("#inbox-chats button").filter(has_text="Ali").click()
    await expect(page.get_by_label("Reply", exact=True)).to_have_value("")


async def test_live_activity_is_filled_from_the_message_store(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """Issue 18: what happened before the page was opened is in the live activity (from the store),
    read as people read it; a reload keeps it; live frames add to it without repeating a message."""
    token = "60123456903"
    await connected_device(api, token, "History")
    r = await api.post(f"/sandbox/devices/{token}/incoming", json={"from": ALI, "name": "Ali", "text": "Earlier hello"})
    assert r.status_code == 200, r.text
    sent = await api.post("/messages", json={"token": token, "to": ALI, "text": "Earlier answer"})
    assert sent.status_code == 200, sent.text
    await until(lambda: _status(api, sent.json()["data"]["messageId"], "read", token))

    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await open_device(page, token)
    feed = page.locator("#feed")
    await expect(feed).to_contain_text(f"Message from Ali (+{ALI}): Earlier hello")
    await expect(feed).to_contain_text(f"Read by Ali (+{ALI}): “Earlier answer”")
    await page.reload()
    await expect(feed).to_contain_text(f"Message from Ali (+{ALI}): Earlier hello")
    r = await api.post(f"/sandbox/devices/{token}/incoming", json={"from": ALI, "name": "Ali", "text": "Live now"})
    assert r.status_code == 200, r.text
    await expect(feed.locator("li").first).to_contain_text("Live now")
    text = await feed.inner_text()
    assert text.count("Earlier hello") == 1 and text.count("Live now") == 1
    assert "@s.whatsapp.net" not in text
    await snap_variants(page, "overview-activity-from-store")
