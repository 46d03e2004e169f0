"""The sandbox's simulated WhatsApp for every message kind, message actions and groups (CONTRACT §11, §12)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.drivers.base import (
    ContactCard,
    IncomingMessage,
    Location,
    MessageEdited,
    MessageRevoked,
    NotFoundError,
    OutgoingMedia,
    OutgoingMessage,
    Poll,
    QuotedRef,
    Reaction,
    ReactionReceived,
    Receipt,
    RefusedError,
)
from gateway.drivers.sandbox import SandboxDriver, SandboxMedia, SandboxStateError
from tests.drivers.test_sandbox import TOKEN, next_of

BOB = "60198765432"
BOB_JID = f"{BOB}@s.whatsapp.net"
SALES = "120363000000000001@g.us"
SUPPORT = "120363000000000002@g.us"


@pytest.fixture
async def online(sandbox: SandboxDriver) -> AsyncIterator[SandboxDriver]:
    await sandbox.connect("qr")
    sandbox.scan()
    yield sandbox


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxDriver]:
    from gateway.drivers.base import DriverOptions

    d = SandboxDriver(TOKEN, DriverOptions(data_dir=tmp_path, sandbox_receipt_delay_ms=10))
    yield d
    await d.close()


async def test_every_kind_is_listed_in_sent_with_its_content(online: SandboxDriver, tmp_path: Path) -> None:
    """`/sent` shows type and content of each kind; media with the sha256 of the bytes WhatsApp received."""
    blob = b"\xff\xd8\xff" + b"jpeg" * 100
    path = tmp_path / "cat.jpg"
    path.write_bytes(blob)
    media = OutgoingMedia("image", path, "image/jpeg", len(blob), "x", filename="cat.jpg", caption="a cat")
    await online.send(BOB_JID, OutgoingMessage(media=media))
    await online.send(BOB_JID, OutgoingMessage(location=Location(3.1, 101.6, "KLCC")))
    await online.send(BOB_JID, OutgoingMessage(contacts=(ContactCard("Ann", ("60123456789",), "a@b.c"),)))
    await online.send(BOB_JID, OutgoingMessage(poll=Poll("Lunch?", ("Rice", "Noodles"), 1)))
    await online.send(BOB_JID, OutgoingMessage(reaction=Reaction("3EB0X", "👍")))
    await online.send(
        SALES,
        OutgoingMessage(text="yes", reply_to=QuotedRef("3EB0Q", SALES, BOB), mentions=(BOB_JID,)),
    )
    sent = online.sent()
    assert [m["type"] for m in sent] == ["image", "location", "contacts", "poll", "reaction", "text"]
    image = sent[0]
    assert image["media"] == {
        "type": "image",
        "mimetype": "image/jpeg",
        "size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "filename": "cat.jpg",
    }
    assert image["text"] == "a cat"
    assert sent[1]["location"] == {"latitude": 3.1, "longitude": 101.6, "name": "KLCC"}
    assert sent[2]["contacts"] == [{"name": "Ann", "phones": ["60123456789"], "email": "a@b.c"}]
    assert sent[3]["poll"] == {"name": "Lunch?", "options": ["Rice", "Noodles"], "selectableCount": 1}
    assert sent[4]["reaction"] == {"messageId": "3EB0X", "emoji": "👍"}
    assert (sent[5]["replyTo"], sent[5]["mentions"], sent[5]["to"]) == ({"messageId": "3EB0Q"}, [BOB], SALES)


async def test_a_plain_text_send_stays_on_the_fast_path(online: SandboxDriver) -> None:
    sent = await online.send(BOB_JID, OutgoingMessage(text="hi"))
    assert online.sent() == [
        {"id": sent.id, "to": BOB_JID, "type": "text", "text": "hi", "timestamp": online.sent()[0]["timestamp"]}
    ]
    receipt = await next_of(online, Receipt)
    assert isinstance(receipt, Receipt) and receipt.message_ids == (sent.id,)


async def test_edit_and_revoke_of_a_sent_message_show_in_sent(online: SandboxDriver) -> None:
    sent = await online.send_text(BOB_JID, "helo")
    await online.edit(BOB_JID, sent.id, "hello")
    assert online.sent()[0]["text"] == "hello" and "editedAt" in online.sent()[0]
    await online.revoke(BOB_JID, sent.id)
    assert online.sent()[0]["revoked"] is True


async def test_incoming_kinds_lid_and_from_me(online: SandboxDriver) -> None:
    """Media keeps its bytes for download; a LID sender has no phone; fromMe names the partner as chat."""
    msg = online.incoming(BOB, "Bob", "look", media=SandboxMedia("image", b"img", "image/png"))
    assert msg.type == "image" and msg.media is not None and msg.media.size == 3
    assert await online.download(msg.media.ref) == b"img"
    lid = online.incoming(None, None, "who am i", sender_lid="123456789012@lid")
    assert (lid.sender, lid.sender_lid, lid.chat) == (None, "123456789012@lid", "123456789012@lid")
    mine = online.incoming(BOB, None, "typed on the phone", from_me=True)
    assert (mine.sender, mine.chat, mine.from_me) == (TOKEN, BOB_JID, True)
    reply = online.incoming(BOB, None, "re", reply_to=msg.id)
    assert reply.reply_to is not None and (reply.reply_to.message_id, reply.reply_to.sender) == (msg.id, BOB)
    group = online.incoming(BOB, None, "hi all", chat=SALES, mentions=(TOKEN,))
    assert group.is_group and group.mentions == (TOKEN,)
    loc = online.incoming(BOB, None, None, location=Location(1, 2))
    assert loc.type == "location"
    seen = [await next_of(online, IncomingMessage) for _ in range(6)]
    assert [m.id for m in seen if isinstance(m, IncomingMessage)] == [
        msg.id,
        lid.id,
        mine.id,
        reply.id,
        group.id,
        loc.id,
    ]


async def test_incoming_edits_revokes_and_reactions(online: SandboxDriver) -> None:
    msg = online.incoming(BOB, "Bob", "helo")
    online.edit_incoming(msg.id, "hello")
    online.revoke_incoming(msg.id)
    online.react(BOB, "3EB0MINE", "❤")
    edited = await next_of(online, MessageEdited)
    revoked = await next_of(online, MessageRevoked)
    reaction = await next_of(online, ReactionReceived)
    assert isinstance(edited, MessageEdited) and (edited.id, edited.text, edited.sender) == (msg.id, "hello", BOB)
    assert isinstance(revoked, MessageRevoked) and revoked.id == msg.id
    assert isinstance(reaction, ReactionReceived) and (reaction.message_id, reaction.emoji) == ("3EB0MINE", "❤")
    with pytest.raises(SandboxStateError):
        online.edit_incoming("3EB0NOPE", "x")


async def test_groups_are_simulated(online: SandboxDriver) -> None:
    """Created groups are listed; participants change with per-phone results; invite links rotate; leave."""
    info = await online.create_group("Deals", [BOB_JID, "60171222330@s.whatsapp.net"])
    assert info.jid.endswith("@g.us") and info.name == "Deals"
    assert {p.phone for p in info.participants} == {TOKEN, BOB}  # the number ending in 0 is not on WhatsApp
    assert info.jid in {g.jid for g in await online.joined_groups()}
    results = await online.update_participants(info.jid, "add", ["60171222333", BOB, "60171222330"])
    assert [(r.phone, r.ok, r.error) for r in results] == [
        ("60171222333", True, None),
        (BOB, False, "already a participant"),
        ("60171222330", False, "not on WhatsApp"),
    ]
    await online.update_participants(info.jid, "promote", [BOB])
    after = await online.group_info(info.jid)
    assert {p.phone: p.is_admin for p in after.participants}[BOB] is True
    await online.update_participants(info.jid, "remove", ["60171222333"])
    assert len((await online.group_info(info.jid)).participants) == 2
    link = await online.invite_link(info.jid)
    assert link.startswith("https://chat.whatsapp.com/")
    assert await online.invite_link(info.jid) == link
    assert await online.invite_link(info.jid, revoke=True) != link
    await online.leave_group(info.jid)
    with pytest.raises(NotFoundError):
        await online.group_info(info.jid)
    with pytest.raises(RefusedError):
        await online.invite_link(SUPPORT)  # not an admin there
    with pytest.raises(NotFoundError):
        await online.leave_group("1@g.us")


async def test_presence_and_read_receipts_are_recorded(online: SandboxDriver) -> None:
    await online.send_presence(BOB_JID, "recording")
    await online.mark_read(BOB_JID, ["3EB0A", "3EB0B"], None)
    assert list(online.presence) == [(BOB_JID, "recording")]
    assert list(online.reads) == [(BOB_JID, ("3EB0A", "3EB0B"), None)]
