"""Every message kind at the neonize seam, both ways, on neonize's real protobuf classes.

Incoming: edits, revokes, reactions, locations, contacts (vCards), polls,
media references, quotes and mentions. Outgoing: what the driver hands to
``send_message`` for each kind of :class:`OutgoingMessage`. Groups: info and
per-participant results. No client, no network.
"""

from __future__ import annotations

import base64
import importlib
from pathlib import Path

import pytest

from gateway.drivers.base import (
    ContactCard,
    IncomingMessage,
    Location,
    MediaRef,
    MessageEdited,
    MessageRevoked,
    OutgoingMedia,
    OutgoingMessage,
    Poll,
    QuotedRef,
    Reaction,
    ReactionReceived,
)
from gateway.drivers.neonize.incoming import media_message, parse_vcard
from gateway.drivers.neonize.outgoing import build_edit, build_message, build_revoke, vcard
from gateway.drivers.neonize.translate import participant_results, translate_group_info, translate_message
from tests.drivers.test_neonize_translate import ALICE, ALICE_LID, BOB, GROUP, jid, lids, message_event, no_lids

nz = importlib.import_module("neonize.proto.Neonize_pb2")
wa = importlib.import_module("neonize.proto.waE2E.WAWebProtobufsE2E_pb2")
wc = importlib.import_module("neonize.proto.waCommon.WACommon_pb2")

GROUP_JID = nz.JID(User=GROUP[:-5], Server="g.us")


def incoming(message: wa.Message, **kw: object) -> IncomingMessage:
    msg = translate_message(message_event(message, **kw), lids({ALICE_LID: ALICE}))  # type: ignore[arg-type]
    assert isinstance(msg, IncomingMessage)
    return msg


# --- edits, revokes, reactions ----------------------------------------------------


def test_an_edit_is_message_edited_with_the_target_id_and_new_text() -> None:
    """An edit (editedMessage > protocolMessage MESSAGE_EDIT) names the edited message, not its own stanza."""
    edit = wa.Message(
        editedMessage=wa.FutureProofMessage(
            message=wa.Message(
                protocolMessage=wa.ProtocolMessage(
                    key=wc.MessageKey(ID="3EB0TARGET", remoteJID=f"{ALICE}@s.whatsapp.net"),
                    type=wa.ProtocolMessage.MESSAGE_EDIT,
                    editedMessage=wa.Message(conversation="fixed typo"),
                )
            )
        )
    )
    ev = translate_message(message_event(edit), no_lids)
    assert isinstance(ev, MessageEdited)
    assert (ev.id, ev.chat, ev.sender, ev.text) == ("3EB0TARGET", f"{ALICE}@s.whatsapp.net", ALICE, "fixed typo")


def test_an_edit_unwrapped_by_whatsmeow_uses_raw() -> None:
    """whatsmeow unwraps edits into Message and keeps the original in Raw: the target comes from Raw."""
    proto = wa.ProtocolMessage(
        key=wc.MessageKey(ID="3EB0T2"),
        type=wa.ProtocolMessage.MESSAGE_EDIT,
        editedMessage=wa.Message(conversation="v2"),
    )
    ev = message_event(wa.Message(conversation="v2"))
    ev.IsEdit = True
    ev.Raw.CopyFrom(wa.Message(protocolMessage=proto))
    out = translate_message(ev, no_lids)
    assert isinstance(out, MessageEdited) and (out.id, out.text) == ("3EB0T2", "v2")


def test_a_revoke_is_message_revoked() -> None:
    revoke = wa.Message(
        protocolMessage=wa.ProtocolMessage(type=wa.ProtocolMessage.REVOKE, key=wc.MessageKey(ID="3EB0GONE"))
    )
    ev = translate_message(message_event(revoke, sender=jid(BOB), chat=GROUP_JID, is_group=True), no_lids)
    assert isinstance(ev, MessageRevoked) and (ev.id, ev.chat, ev.sender) == ("3EB0GONE", GROUP, BOB)


def test_a_reaction_is_reaction_received_and_an_empty_one_removes() -> None:
    for emoji in ("👍", ""):
        react = wa.Message(reactionMessage=wa.ReactionMessage(key=wc.MessageKey(ID="3EB0MINE"), text=emoji))
        ev = translate_message(message_event(react), no_lids)
        assert isinstance(ev, ReactionReceived)
        assert (ev.message_id, ev.sender, ev.emoji, ev.chat) == ("3EB0MINE", ALICE, emoji, f"{ALICE}@s.whatsapp.net")


def test_a_reaction_from_an_unresolvable_lid_is_kept() -> None:
    react = wa.Message(reactionMessage=wa.ReactionMessage(key=wc.MessageKey(ID="3EB0X"), text="❤"))
    ev = translate_message(message_event(react, sender=jid("999888777", "lid")), no_lids)
    assert isinstance(ev, ReactionReceived) and ev.sender is None


# --- content --------------------------------------------------------------------------


def test_location_with_name_and_address() -> None:
    msg = incoming(
        wa.Message(
            locationMessage=wa.LocationMessage(
                degreesLatitude=3.139, degreesLongitude=101.6869, name="KLCC", address="KL"
            )
        )
    )
    assert msg.type == "location"
    assert msg.location == Location(3.139, 101.6869, "KLCC", "KL")


VCARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Tan;Ah Kow;;;\r\nFN:Ah Kow Tan\r\nORG:Acme\\, Inc.;\r\n"
    "TEL;type=CELL;type=VOICE;waid=60198765432:+60 19-876 5432\r\nTEL;type=WORK:+60 3 1234 5678\r\n"
    "EMAIL;type=INTERNET:ak@acme.test\r\nEND:VCARD"
)


def test_a_contact_vcard_is_parsed() -> None:
    """Name, phones (waid first, then the digits), e-mail and organisation; the raw vCard kept."""
    msg = incoming(wa.Message(contactMessage=wa.ContactMessage(displayName="AK", vcard=VCARD)))
    assert msg.type == "contacts"
    (card,) = msg.contacts
    assert (card.name, card.phones, card.email, card.organization) == (
        "Ah Kow Tan",
        ("60198765432", "60312345678"),
        "ak@acme.test",
        "Acme, Inc.",
    )
    assert card.vcard == VCARD


def test_a_contacts_array_gives_every_card() -> None:
    cards = [
        wa.ContactMessage(displayName=n, vcard=vcard(ContactCard(n, (p,)))) for n, p in (("A", "601"), ("B", "602"))
    ]
    msg = incoming(wa.Message(contactsArrayMessage=wa.ContactsArrayMessage(displayName="2 contacts", contacts=cards)))
    assert [(c.name, c.phones) for c in msg.contacts] == [("A", ("601",)), ("B", ("602",))]


def test_vcard_round_trip_escapes() -> None:
    card = ContactCard("Lee; Jr, \\ X", ("+60 12-345 6789",), "a@b.c", "Org; Ltd")
    back = parse_vcard(vcard(card))
    assert (back.name, back.phones, back.email, back.organization) == (
        "Lee; Jr, \\ X",
        ("60123456789",),
        "a@b.c",
        "Org; Ltd",
    )


def test_a_poll_gives_its_question_and_options() -> None:
    poll = wa.PollCreationMessage(
        name="Lunch?",
        options=[wa.PollCreationMessage.Option(optionName=o) for o in ("Rice", "Noodles")],
        selectableOptionsCount=1,
    )
    msg = incoming(wa.Message(pollCreationMessageV3=poll))
    assert msg.type == "poll" and msg.poll == Poll("Lunch?", ("Rice", "Noodles"), 1)


@pytest.mark.parametrize(
    ("field", "part", "kind", "voice"),
    [
        ("imageMessage", wa.ImageMessage(mimetype="image/jpeg", fileLength=1234, caption="cap"), "image", False),
        ("audioMessage", wa.AudioMessage(mimetype="audio/ogg; codecs=opus", fileLength=99, PTT=True), "audio", True),
        ("documentMessage", wa.DocumentMessage(mimetype="application/pdf", fileName="inv.pdf"), "document", False),
        ("stickerMessage", wa.StickerMessage(), "sticker", False),
    ],
)
def test_media_is_described_and_keeps_a_downloadable_ref(field: str, part: object, kind: str, voice: bool) -> None:
    """Incoming media: type, mimetype, size, filename, voice note, and a ref that gives the message back."""
    msg = incoming(wa.Message(**{field: part}))
    assert msg.media is not None
    assert (msg.type, msg.media.type, msg.media.voice_note) == (kind, kind, voice)
    assert msg.media.ref.driver == "neonize"
    again = media_message(msg.media.ref)
    assert again.HasField(field) and getattr(again, field) == part
    if kind == "document":
        assert msg.media.filename == "inv.pdf" and msg.media.size is None
    if kind == "sticker":
        assert msg.media.mimetype == "image/webp"


def test_a_reply_and_mentions_are_read_from_the_context() -> None:
    """replyTo names the quoted id and its author's phone (LIDs resolved); mentions become phones."""
    ctx = wa.ContextInfo(
        stanzaID="3EB0QUOTED",
        participant=f"{ALICE_LID}@lid",
        mentionedJID=[f"{BOB}@s.whatsapp.net", "777@lid"],
    )
    msg = incoming(wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text="yes @Bob", contextInfo=ctx)))
    assert msg.reply_to is not None and (msg.reply_to.message_id, msg.reply_to.sender) == ("3EB0QUOTED", ALICE)
    assert msg.mentions == (BOB, "777@lid")


# --- outgoing ---------------------------------------------------------------------------


def test_plain_text_is_a_conversation() -> None:
    assert build_message(f"{BOB}@s.whatsapp.net", OutgoingMessage(text="hi")) == wa.Message(conversation="hi")


def test_a_reply_with_mentions_quotes_the_stored_message() -> None:
    out = build_message(
        GROUP,
        OutgoingMessage(
            text="agreed @60198765432",
            reply_to=QuotedRef("3EB0Q", GROUP, ALICE, False, "the plan"),
            mentions=(f"{BOB}@s.whatsapp.net",),
        ),
    )
    ext = out.extendedTextMessage
    assert ext.text == "agreed @60198765432"
    ctx = ext.contextInfo
    assert (ctx.stanzaID, ctx.participant, ctx.quotedMessage.conversation) == (
        "3EB0Q",
        f"{ALICE}@s.whatsapp.net",
        "the plan",
    )
    assert list(ctx.mentionedJID) == [f"{BOB}@s.whatsapp.net"]


def test_location_contacts_and_poll_are_built_as_whatsapp_expects() -> None:
    loc = build_message("x", OutgoingMessage(location=Location(1.5, 2.5, "Here", None))).locationMessage
    assert (loc.degreesLatitude, loc.degreesLongitude, loc.name, loc.address) == (1.5, 2.5, "Here", "")
    one = build_message("x", OutgoingMessage(contacts=(ContactCard("A", ("60123456789",)),)))
    assert one.contactMessage.displayName == "A" and "waid=60123456789:+60123456789" in one.contactMessage.vcard
    two = build_message("x", OutgoingMessage(contacts=(ContactCard("A", ("1",)), ContactCard("B", ("2",)))))
    assert [c.displayName for c in two.contactsArrayMessage.contacts] == ["A", "B"]
    poll = build_message("x", OutgoingMessage(poll=Poll("Q?", ("a", "b", "c"), 2)))
    assert [o.optionName for o in poll.pollCreationMessage.options] == ["a", "b", "c"]
    assert poll.pollCreationMessage.selectableOptionsCount == 2
    assert len(poll.messageContextInfo.messageSecret) == 32  # votes are encrypted with it


def test_a_reaction_keys_the_target_message() -> None:
    """In a group, a reaction to someone else's message names its author; to our own, fromMe."""
    theirs = build_message(GROUP, OutgoingMessage(reaction=Reaction("3EB0T", "👍", f"{ALICE}@s.whatsapp.net", False)))
    key = theirs.reactionMessage.key
    assert (key.ID, key.remoteJID, key.fromMe, key.participant, theirs.reactionMessage.text) == (
        "3EB0T",
        GROUP,
        False,
        f"{ALICE}@s.whatsapp.net",
        "👍",
    )
    mine = build_message(f"{ALICE}@s.whatsapp.net", OutgoingMessage(reaction=Reaction("3EB0M", "", None, True)))
    assert mine.reactionMessage.key.fromMe and mine.reactionMessage.text == ""


def test_media_is_not_built_here(tmp_path: Path) -> None:
    media = OutgoingMedia("image", tmp_path / "x.jpg", "image/jpeg", 1, "00")
    with pytest.raises(ValueError, match="uploaded"):
        build_message("x", OutgoingMessage(media=media))


def test_edit_and_revoke_are_protocol_messages_on_our_own_key() -> None:
    edit = build_edit(f"{ALICE}@s.whatsapp.net", "3EB0E", "new text").editedMessage.message.protocolMessage
    assert (edit.type, edit.key.ID, edit.key.fromMe, edit.editedMessage.conversation) == (
        wa.ProtocolMessage.MESSAGE_EDIT,
        "3EB0E",
        True,
        "new text",
    )
    revoke = build_revoke(GROUP, "3EB0R").protocolMessage
    assert (revoke.type, revoke.key.ID, revoke.key.fromMe, revoke.key.remoteJID) == (
        wa.ProtocolMessage.REVOKE,
        "3EB0R",
        True,
        GROUP,
    )


def test_an_outgoing_message_has_exactly_one_content() -> None:
    with pytest.raises(ValueError):
        OutgoingMessage()
    with pytest.raises(ValueError):
        OutgoingMessage(text="a", location=Location(0, 0))
    assert OutgoingMessage(poll=Poll("q", ("a", "b"))).type == "poll"


# --- groups ----------------------------------------------------------------------------------


def test_group_info_names_participants_by_phone() -> None:
    info = nz.GroupInfo(
        JID=GROUP_JID,
        OwnerJID=jid(ALICE),
        GroupName=nz.GroupName(Name="Team"),
        GroupTopic=nz.GroupTopic(Topic="t"),
        Participants=[
            nz.GroupParticipant(JID=jid(ALICE), IsAdmin=True, IsSuperAdmin=True),
            nz.GroupParticipant(JID=jid(ALICE_LID, "lid"), LID=jid(ALICE_LID, "lid"), PhoneNumber=jid(BOB)),
            nz.GroupParticipant(JID=jid("555", "lid")),
        ],
    )
    g = translate_group_info(info, no_lids)
    assert (g.jid, g.name, g.topic, g.owner) == (GROUP, "Team", "t", f"{ALICE}@s.whatsapp.net")
    assert [(p.phone, p.is_admin, p.is_super_admin) for p in g.participants] == [
        (ALICE, True, True),
        (BOB, False, False),
        (None, False, False),
    ]


def test_participant_results_follow_the_order_asked() -> None:
    answers = [
        nz.GroupParticipant(JID=jid(BOB), Error=409),
        nz.GroupParticipant(JID=jid(ALICE)),
    ]
    results = participant_results(
        [f"{ALICE}@s.whatsapp.net", f"{BOB}@s.whatsapp.net", "60171222333@s.whatsapp.net"], answers
    )
    assert [(r.phone, r.ok, r.error) for r in results] == [
        (ALICE, True, None),
        (BOB, False, "already a participant"),
        ("60171222333", False, "no answer from WhatsApp"),
    ]


def test_media_ref_is_json_able() -> None:
    ref = MediaRef("neonize", base64.b64encode(b"\x0a\x00").decode())
    assert isinstance(ref.data, str)
