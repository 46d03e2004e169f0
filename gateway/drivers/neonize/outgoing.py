"""Outgoing messages: the driver seam's types → WhatsApp protobufs.

Pure functions (no Go calls, no threads), so they are tested by building and
reading the protobufs (tests/drivers/test_neonize_outgoing.py). They build what
whatsmeow's own builders build (``BuildPollCreation``, ``BuildReaction``,
``BuildEdit``, ``BuildRevoke``) in Python, which spares a round trip into Go
for each and keeps them testable without a client. Media is uploaded through
the client and is not built here.
"""

from __future__ import annotations

import os
import time

from gateway.drivers.base import ContactCard, Location, OutgoingMessage, Poll, QuotedRef, Reaction
from gateway.drivers.neonize.patches import wa, wc

__all__ = ["build_edit", "build_message", "build_revoke", "vcard"]


def _jid(value: str) -> str:
    """A phone's digits or a JID as a JID string (``user@server``, no device part)."""
    user, sep, server = value.partition("@")
    user = user.split(":", 1)[0]
    return f"{user}@{server if sep and server != 'c.us' else 's.whatsapp.net'}"


def context_info(message: OutgoingMessage) -> wa.ContextInfo | None:
    """The quote and @mentions of a message, or None when it has neither."""
    if message.reply_to is None and not message.mentions:
        return None
    info = wa.ContextInfo()
    if message.reply_to is not None:
        quote(info, message.reply_to)
    info.mentionedJID.extend(_jid(m) for m in message.mentions)
    return info


def quote(info: wa.ContextInfo, ref: QuotedRef) -> None:
    """Quote ``ref``: its id, its author (in groups the participant) and a copy of its text."""
    info.stanzaID = ref.id
    if ref.sender:
        info.participant = _jid(ref.sender)
    info.quotedMessage.CopyFrom(wa.Message(conversation=ref.text or ""))


def vcard(card: ContactCard) -> str:
    """A vCard 3.0 as WhatsApp writes them (``waid`` makes the number tappable)."""

    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")

    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{esc(card.name)}"]
    if card.organization:
        lines.append(f"ORG:{esc(card.organization)};")
    for phone in card.phones:
        digits = "".join(c for c in phone if c.isdigit())
        lines.append(f"TEL;type=CELL;type=VOICE;waid={digits}:+{digits}")
    if card.email:
        lines.append(f"EMAIL:{esc(card.email)}")
    lines.append("END:VCARD")
    return "\n".join(lines)


def _location(loc: Location) -> wa.LocationMessage:
    msg = wa.LocationMessage(degreesLatitude=loc.latitude, degreesLongitude=loc.longitude)
    if loc.name:
        msg.name = loc.name
    if loc.address:
        msg.address = loc.address
    return msg


def _poll(poll: Poll) -> wa.Message:
    """As whatsmeow's BuildPollCreation: the options and a fresh 32-byte message secret (votes are
    encrypted with it, so every poll needs its own)."""
    return wa.Message(
        pollCreationMessage=wa.PollCreationMessage(
            name=poll.name,
            options=[wa.PollCreationMessage.Option(optionName=o) for o in poll.options],
            selectableOptionsCount=poll.selectable_count,
        ),
        messageContextInfo=wa.MessageContextInfo(messageSecret=os.urandom(32)),
    )


def _reaction(chat: str, reaction: Reaction) -> wa.Message:
    """As whatsmeow's BuildReaction: the target's key (chat, fromMe, id; the author in groups)."""
    key = wc.MessageKey(remoteJID=_jid(chat), fromMe=reaction.from_me, ID=reaction.message_id)
    if not reaction.from_me and reaction.sender and chat.endswith("@g.us"):
        key.participant = _jid(reaction.sender)
    return wa.Message(
        reactionMessage=wa.ReactionMessage(key=key, text=reaction.emoji, senderTimestampMS=int(time.time() * 1000))
    )


def build_message(to: str, message: OutgoingMessage) -> wa.Message:
    """Every kind but media as the protobuf whatsmeow sends; ``to`` is the chat's JID."""
    if message.media is not None:
        raise ValueError("media is uploaded through the client, not built here")
    ctx = context_info(message)
    if message.text is not None:
        if ctx is None:
            return wa.Message(conversation=message.text)
        return wa.Message(extendedTextMessage=wa.ExtendedTextMessage(text=message.text, contextInfo=ctx))
    if message.reaction is not None:
        return _reaction(to, message.reaction)
    if message.location is not None:
        loc = _location(message.location)
        if ctx is not None:
            loc.contextInfo.CopyFrom(ctx)
        return wa.Message(locationMessage=loc)
    if message.poll is not None:
        built = _poll(message.poll)
        if ctx is not None:
            built.pollCreationMessage.contextInfo.CopyFrom(ctx)
        return built
    cards = message.contacts
    if len(cards) == 1:
        one = wa.ContactMessage(displayName=cards[0].name, vcard=vcard(cards[0]))
        if ctx is not None:
            one.contextInfo.CopyFrom(ctx)
        return wa.Message(contactMessage=one)
    many = wa.ContactsArrayMessage(
        displayName=f"{len(cards)} contacts",
        contacts=[wa.ContactMessage(displayName=c.name, vcard=vcard(c)) for c in cards],
    )
    if ctx is not None:
        many.contextInfo.CopyFrom(ctx)
    return wa.Message(contactsArrayMessage=many)


def build_edit(chat: str, message_id: str, text: str) -> wa.Message:
    """As whatsmeow's BuildEdit: a MESSAGE_EDIT protocol message carrying the new text."""
    return wa.Message(
        editedMessage=wa.FutureProofMessage(
            message=wa.Message(
                protocolMessage=wa.ProtocolMessage(
                    key=wc.MessageKey(fromMe=True, ID=message_id, remoteJID=_jid(chat)),
                    type=wa.ProtocolMessage.MESSAGE_EDIT,
                    editedMessage=wa.Message(conversation=text),
                    timestampMS=int(time.time() * 1000),
                )
            )
        )
    )


def build_revoke(chat: str, message_id: str) -> wa.Message:
    """As whatsmeow's BuildRevoke for our own message: a REVOKE protocol message."""
    return wa.Message(
        protocolMessage=wa.ProtocolMessage(
            type=wa.ProtocolMessage.REVOKE,
            key=wc.MessageKey(fromMe=True, ID=message_id, remoteJID=_jid(chat)),
        )
    )
