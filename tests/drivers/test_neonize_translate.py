"""neonize events -> DriverEvents, built from neonize's real protobuf classes.

Each test constructs the event exactly as goneonize hands it to Python (the
``neonize.proto`` messages behind ``neonize.events``) and checks the
translation; no client, no network.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest

from gateway.drivers.base import (
    CheckError,
    Connected,
    HistoryContact,
    IncomingMessage,
    NotConnectedError,
    SendError,
)
from gateway.drivers.neonize.translate import (
    device_jid_string,
    map_error,
    message_content,
    parse_device_jid,
    parse_jid,
    phone_checks,
    translate_connected,
    translate_group,
    translate_history,
    translate_message,
    translate_receipt,
)

# neonize is imported through the driver, which contains its import-time side
# effects (a leaked pipe is a ResourceWarning, an error here).
nz = importlib.import_module("neonize.proto.Neonize_pb2")
wa = importlib.import_module("neonize.proto.waE2E.WAWebProtobufsE2E_pb2")
hs = importlib.import_module("neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2")
vname = importlib.import_module("neonize.proto.waVnameCert.WAWebProtobufsVnameCert_pb2")
nz_events = importlib.import_module("neonize.events")

ALICE = "60123456789"
BOB = "60198765432"
ALICE_LID = "123456789012345"
GROUP = "120363025246125486@g.us"
TS = 1_700_000_000


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> nz.JID:
    return nz.JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=not user)


def no_lids(_: str) -> str | None:
    return None


def lids(mapping: dict[str, str]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def resolve(user: str) -> str | None:
        calls.append(user)
        return mapping.get(user)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def message_event(
    message: wa.Message,
    *,
    sender: nz.JID | None = None,
    sender_alt: nz.JID | None = None,
    chat: nz.JID | None = None,
    is_group: bool = False,
    from_me: bool = False,
    push_name: str = "Alice",
    timestamp: int = TS * 1000,
) -> nz.Message:
    sender = sender or jid(ALICE)
    source = nz.MessageSource(
        Chat=chat or jid(sender.User, sender.Server),
        Sender=sender,
        SenderAlt=sender_alt or jid(""),
        IsFromMe=from_me,
        IsGroup=is_group,
    )
    info = nz.MessageInfo(MessageSource=source, ID="3EB0AAAA", Pushname=push_name, Timestamp=timestamp)
    return nz.Message(Info=info, Message=message)


def test_event_classes_are_neonizes_own() -> None:
    """The protobuf classes used here are the ones neonize dispatches."""
    assert nz_events.MessageEv is nz.Message
    assert nz_events.ReceiptEv is nz.Receipt
    assert nz_events.HistorySyncEv is nz.HistorySync


# --- messages ---------------------------------------------------------------


def test_plain_text_direct_message() -> None:
    """A conversation message becomes a text IncomingMessage from the sender's phone."""
    msg = translate_message(message_event(wa.Message(conversation="hello")), no_lids)
    assert msg is not None
    assert (msg.id, msg.sender, msg.sender_name, msg.chat) == ("3EB0AAAA", ALICE, "Alice", f"{ALICE}@s.whatsapp.net")
    assert (msg.type, msg.text, msg.is_group) == ("text", "hello", False)
    assert msg.timestamp == datetime.fromtimestamp(TS, UTC)


def test_timestamp_in_seconds_is_understood_too() -> None:
    """Older goneonize builds send seconds, newer ones milliseconds."""
    msg = translate_message(message_event(wa.Message(conversation="x"), timestamp=TS), no_lids)
    assert msg is not None and msg.timestamp == datetime.fromtimestamp(TS, UTC)


def test_extended_text_message() -> None:
    """extendedTextMessage (links, replies, mentions) carries its text."""
    ev = message_event(wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text="see https://x.y")))
    msg = translate_message(ev, no_lids)
    assert msg is not None and (msg.type, msg.text) == ("text", "see https://x.y")


@pytest.mark.parametrize(
    ("message", "kind", "text"),
    [
        (wa.Message(imageMessage=wa.ImageMessage(caption="a cat")), "image", "a cat"),
        (wa.Message(videoMessage=wa.VideoMessage(caption="a clip")), "video", "a clip"),
        (wa.Message(documentMessage=wa.DocumentMessage(caption="the doc", fileName="x.pdf")), "document", "the doc"),
        (wa.Message(imageMessage=wa.ImageMessage()), "image", None),
        (wa.Message(stickerMessage=wa.StickerMessage(mimetype="image/webp")), "sticker", None),
        (wa.Message(audioMessage=wa.AudioMessage(seconds=3, PTT=True)), "audio", None),
        (wa.Message(locationMessage=wa.LocationMessage(degreesLatitude=3.1)), "location", None),
        (wa.Message(contactMessage=wa.ContactMessage(displayName="Bob")), "contacts", None),
        (wa.Message(pollCreationMessage=wa.PollCreationMessage(name="lunch?")), "poll", None),
    ],
)
def test_media_and_no_text_messages(message: wa.Message, kind: str, text: str | None) -> None:
    """Captions are the text of media; messages without text get None and their kind."""
    msg = translate_message(message_event(message), no_lids)
    assert msg is not None and (msg.type, msg.text) == (kind, text)


def test_unknown_content_is_reported_as_unknown() -> None:
    """A message kind the driver does not know is still reported, typed 'unknown'."""
    message = wa.Message(groupInviteMessage=wa.GroupInviteMessage(groupName="g"))
    msg = translate_message(message_event(message), no_lids)
    assert msg is not None and (msg.type, msg.text) == ("unknown", None)


def test_wrapped_messages_are_unwrapped() -> None:
    """Ephemeral, view-once and document-with-caption wrappers expose the inner message."""
    inner = wa.Message(imageMessage=wa.ImageMessage(caption="once"))
    view_once = wa.Message(viewOnceMessageV2=wa.FutureProofMessage(message=inner))
    ephemeral = wa.Message(ephemeralMessage=wa.FutureProofMessage(message=view_once))
    assert message_content(ephemeral) == ("image", "once")
    doc = wa.Message(documentMessage=wa.DocumentMessage(caption="report"))
    assert message_content(wa.Message(documentWithCaptionMessage=wa.FutureProofMessage(message=doc))) == (
        "document",
        "report",
    )


@pytest.mark.parametrize(
    "message",
    [
        wa.Message(protocolMessage=wa.ProtocolMessage(type=wa.ProtocolMessage.REVOKE)),
        wa.Message(senderKeyDistributionMessage=wa.SenderKeyDistributionMessage(groupID=GROUP)),
        wa.Message(),
    ],
)
def test_protocol_chatter_is_not_a_message(message: wa.Message) -> None:
    """Revokes, key distribution and empty payloads are not reported."""
    assert translate_message(message_event(message), no_lids) is None


def test_own_messages_are_reported_from_me_and_status_posts_are_not() -> None:
    """A message typed on the linked phone is reported (from_me, sender = our number); status updates are skipped."""
    ev = message_event(wa.Message(conversation="me"), sender=jid(BOB), chat=jid(ALICE), from_me=True)
    msg = translate_message(ev, no_lids, own_phone=BOB)
    assert isinstance(msg, IncomingMessage)
    assert (msg.from_me, msg.sender, msg.chat, msg.text) == (True, BOB, f"{ALICE}@s.whatsapp.net", "me")
    status = message_event(wa.Message(conversation="story"), chat=jid("status", "broadcast"))
    assert translate_message(status, no_lids) is None


def test_group_message() -> None:
    """In a group, chat is the group JID and sender the participant's phone."""
    ev = message_event(
        wa.Message(conversation="hi all"),
        sender=jid(BOB, device=3),
        chat=nz.JID(User=GROUP[:-5], Server="g.us"),
        is_group=True,
        push_name="Bob",
    )
    msg = translate_message(ev, no_lids)
    assert msg is not None
    assert (msg.chat, msg.is_group, msg.sender, msg.sender_name) == (GROUP, True, BOB, "Bob")


def test_lid_sender_uses_sender_alt_phone() -> None:
    """A LID-addressed message names the phone number in SenderAlt: that is the sender."""
    resolve = lids({})
    ev = message_event(
        wa.Message(conversation="hi"), sender=jid(ALICE_LID, "lid"), sender_alt=jid(ALICE), chat=jid(ALICE_LID, "lid")
    )
    msg = translate_message(ev, resolve)
    assert msg is not None
    assert msg.sender == ALICE
    assert msg.chat == f"{ALICE}@s.whatsapp.net"  # the direct chat is named by phone, not LID
    assert resolve.calls == []  # type: ignore[attr-defined]


def test_lid_sender_without_alt_is_resolved_through_the_store() -> None:
    """Without SenderAlt the LID is looked up (get_pn_from_lid) and never leaks out."""
    resolve = lids({ALICE_LID: ALICE})
    ev = message_event(
        wa.Message(conversation="hi"),
        sender=jid(ALICE_LID, "lid", device=2),
        chat=nz.JID(User=GROUP[:-5], Server="g.us"),
        is_group=True,
    )
    msg = translate_message(ev, resolve)
    assert msg is not None and msg.sender == ALICE and msg.chat == GROUP
    assert resolve.calls == [ALICE_LID]  # type: ignore[attr-defined]


def test_unresolvable_lid_sender_is_reported_with_its_lid() -> None:
    """A sender that cannot be mapped to a phone number is still reported: sender None, the LID beside it."""
    ev = message_event(wa.Message(conversation="hi"), sender=jid(ALICE_LID, "lid"))
    msg = translate_message(ev, no_lids)
    assert isinstance(msg, IncomingMessage)
    assert (msg.sender, msg.sender_lid, msg.text) == (None, f"{ALICE_LID}@lid", "hi")
    assert msg.chat == f"{ALICE_LID}@lid"  # no phone to name the chat by


def test_empty_push_name_is_none() -> None:
    msg = translate_message(message_event(wa.Message(conversation="x"), push_name=""), no_lids)
    assert msg is not None and msg.sender_name is None


# --- receipts ---------------------------------------------------------------


def receipt_event(kind: int, ids: list[str], sender: nz.JID, *, from_me: bool = False) -> nz.Receipt:
    source = nz.MessageSource(Chat=jid(sender.User, sender.Server), Sender=sender, IsFromMe=from_me)
    return nz.Receipt(MessageSource=source, MessageIDs=ids, Timestamp=TS, Type=kind)


@pytest.mark.parametrize(
    ("kind", "name"),
    [(nz.Receipt.DELIVERED, "delivered"), (nz.Receipt.READ, "read"), (nz.Receipt.PLAYED, "played")],
)
def test_receipt_with_several_ids(kind: int, name: str) -> None:
    """One receipt can acknowledge several messages; all ids are kept, in order."""
    receipt = translate_receipt(receipt_event(kind, ["3EB0A", "3EB0B", "3EB0C"], jid(BOB, device=1)), no_lids)
    assert receipt is not None
    assert receipt.type == name
    assert receipt.message_ids == ("3EB0A", "3EB0B", "3EB0C")
    assert receipt.sender == f"{BOB}@s.whatsapp.net"
    assert receipt.timestamp == datetime.fromtimestamp(TS, UTC)


def test_receipt_from_lid_is_named_by_phone() -> None:
    receipt = translate_receipt(
        receipt_event(nz.Receipt.READ, ["3EB0A"], jid(ALICE_LID, "lid")), lids({ALICE_LID: ALICE})
    )
    assert receipt is not None and receipt.sender == f"{ALICE}@s.whatsapp.net"


@pytest.mark.parametrize("kind", [nz.Receipt.READ_SELF, nz.Receipt.RETRY, nz.Receipt.SENDER, nz.Receipt.INACTIVE])
def test_other_receipt_kinds_are_ignored(kind: int) -> None:
    assert translate_receipt(receipt_event(kind, ["3EB0A"], jid(BOB)), no_lids) is None


def test_receipt_from_own_device_is_ignored() -> None:
    assert translate_receipt(receipt_event(nz.Receipt.READ, ["3EB0A"], jid(BOB), from_me=True), no_lids) is None


# --- history sync -------------------------------------------------------------


def test_history_sync_contacts_with_push_names() -> None:
    """Push names, direct conversations and LID mappings become one contact batch."""
    data = hs.HistorySync(
        syncType=hs.HistorySync.INITIAL_BOOTSTRAP,
        pushnames=[
            hs.Pushname(ID=f"{ALICE}@s.whatsapp.net", pushname="Alice"),
            hs.Pushname(ID=f"{ALICE_LID}@lid", pushname="Alice (lid)"),  # same person, by LID
            hs.Pushname(ID="60171222333@s.whatsapp.net", pushname=""),
        ],
        conversations=[
            hs.Conversation(ID=f"{BOB}@s.whatsapp.net", displayName="Bob B."),
            hs.Conversation(ID=GROUP, name="A group"),  # groups are not contacts
            hs.Conversation(ID="status@broadcast"),
        ],
        phoneNumberToLidMappings=[
            hs.PhoneNumberToLIDMapping(pnJID=f"{ALICE}@s.whatsapp.net", lidJID=f"{ALICE_LID}@lid")
        ],
    )
    batch = translate_history(nz.HistorySync(Data=data), no_lids)
    assert batch is not None
    assert set(batch.contacts) == {
        HistoryContact(ALICE, "Alice"),
        HistoryContact("60171222333", None),
        HistoryContact(BOB, "Bob B."),
    }


def test_history_sync_skips_own_number_and_unknown_lids() -> None:
    data = hs.HistorySync(
        syncType=hs.HistorySync.PUSH_NAME,
        pushnames=[
            hs.Pushname(ID=f"{ALICE}@s.whatsapp.net", pushname="Me"),
            hs.Pushname(ID="999999999999@lid", pushname="Nobody knows"),
        ],
    )
    assert translate_history(nz.HistorySync(Data=data), no_lids, exclude=[ALICE]) is None


# --- connection, groups, checks, errors ---------------------------------------


def test_connected_from_the_device_store() -> None:
    me = nz.Device(JID=jid(ALICE, device=7), PushName="Shop", Platform="android", Initialized=True)
    assert translate_connected(me) == Connected(
        pushname="Shop", platform="android", phone=ALICE, jid=f"{ALICE}:7@s.whatsapp.net"
    )
    assert translate_connected(nz.Device()) == Connected(None, None, None, None)


def test_a_device_jid_is_whatsmeows_key_and_parses_back() -> None:
    """The full JID (device part, agent) is the key of whatsmeow_device: written and read back exactly."""
    for text in (f"{ALICE}:7@s.whatsapp.net", f"{ALICE}.1:12@s.whatsapp.net", f"{ALICE}@s.whatsapp.net", "12345:3@lid"):
        assert device_jid_string(parse_device_jid(text)) == text
    assert device_jid_string(nz.JID()) is None
    for junk in (
        "",
        "601@",
        "@s.whatsapp.net",
        "a b:1@s.whatsapp.net",
        "601:x@s.whatsapp.net",
        "601:1@S.WHATSAPP",
        "x" * 70 + "@lid",
    ):
        with pytest.raises(ValueError):
            parse_device_jid(junk)


def group_info(participants: list[nz.GroupParticipant]) -> nz.GroupInfo:
    return nz.GroupInfo(
        JID=nz.JID(User=GROUP[:-5], Server="g.us"),
        OwnerJID=jid("99887766554433", "lid"),
        OwnerPN=jid(BOB),
        GroupName=nz.GroupName(Name="Team"),
        GroupTopic=nz.GroupTopic(Topic="Daily"),
        Participants=participants,
    )


def test_group_with_own_admin_rights_found_by_lid() -> None:
    """Own membership is matched by JID, LID or phone; owner prefers the phone JID."""
    info = group_info(
        [
            nz.GroupParticipant(JID=jid(BOB), IsAdmin=True, IsSuperAdmin=True),
            nz.GroupParticipant(JID=jid(ALICE_LID, "lid"), LID=jid(ALICE_LID, "lid"), IsAdmin=True),
        ]
    )
    group = translate_group(info, own_users=[ALICE, ALICE_LID])
    assert (group.jid, group.name, group.topic, group.owner) == (GROUP, "Team", "Daily", f"{BOB}@s.whatsapp.net")
    assert (group.participant_count, group.is_admin, group.is_super_admin) == (2, True, False)


def test_group_where_we_are_a_plain_member() -> None:
    group = translate_group(group_info([nz.GroupParticipant(JID=jid(ALICE))]), own_users=[ALICE])
    assert (group.is_admin, group.is_super_admin) == (False, False)


def test_phone_checks_keep_order_and_verified_names() -> None:
    """Answers are matched by query, unknown phones are 'not on WhatsApp'."""
    business = nz.IsOnWhatsAppResponse(
        Query=f"+{BOB}",
        JID=jid(BOB),
        IsIn=True,
        VerifiedName=nz.VerifiedName(Details=vname.VerifiedNameCertificate.Details(verifiedName="Bob's Shop")),
    )
    absent = nz.IsOnWhatsAppResponse(Query="+60171222333", JID=jid("60171222333"), IsIn=False)
    checks = phone_checks([ALICE, BOB, "60171222333"], [business, absent])
    assert [(c.phone, c.is_on_whatsapp, c.jid, c.verified_name) for c in checks] == [
        (ALICE, False, None, None),
        (BOB, True, f"{BOB}@s.whatsapp.net", "Bob's Shop"),
        ("60171222333", False, None, None),
    ]


def test_parse_jid() -> None:
    assert (parse_jid(ALICE).User, parse_jid(ALICE).Server) == (ALICE, "s.whatsapp.net")
    assert parse_jid(GROUP).Server == "g.us"
    assert parse_jid(f"{ALICE}:3@c.us").Server == "s.whatsapp.net"
    with pytest.raises(ValueError):
        parse_jid("@g.us")


@pytest.mark.parametrize(
    ("message", "kind", "expected"),
    [
        ("websocket not connected", SendError, NotConnectedError),
        ("failed to send usync query: websocket not connected", CheckError, NotConnectedError),
        ("the store doesn't contain a device JID", SendError, NotConnectedError),
        ("client is nil", CheckError, NotConnectedError),
        ("info query timed out", SendError, SendError),
        ("server returned error 479", CheckError, CheckError),
    ],
)
def test_errors_map_to_the_seam(message: str, kind: type[Exception], expected: type[Exception]) -> None:
    error = map_error(RuntimeError(message), kind)  # type: ignore[arg-type]
    assert type(error) is expected and str(error) == message
