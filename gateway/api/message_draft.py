"""A message to send that is not a plain text: checked in the contract's order, resolved against the store.

``Draft.parse`` runs the §11 content rules (exactly one content field, each
field's value rules: ``INVALID_MESSAGE``); ``Draft.resolve`` then looks up what
the message refers to — the message it quotes (``replyTo``) or reacts to — and
answers ``NOT_FOUND`` for an id this device never stored, before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gateway.api import message_content as content
from gateway.api.models.requests import SendMessage
from gateway.drivers.base import ContactCard, Location, OutgoingMessage, Poll, QuotedRef
from gateway.messages.service import MessageService


def plain(body: SendMessage) -> bool:
    """A text with nothing else: the fast path."""
    return (
        body.location is None
        and body.contacts is None
        and body.reaction is None
        and body.poll is None
        and body.reply_to is None
        and body.mentions is None
        and getattr(body, "media", None) is None
    )


@dataclass(frozen=True, slots=True)
class Draft:
    text: str | None = None
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = ()
    reaction: tuple[str, str] | None = None  # (message id, emoji)
    poll: Poll | None = None
    reply_to: str | None = None
    mentions: tuple[str, ...] = ()  # JIDs

    @classmethod
    def parse(cls, body: SendMessage, mentions: tuple[str, ...]) -> Draft:
        """``mentions`` already as JIDs (their INVALID_PHONE comes before the content's INVALID_MESSAGE)."""
        kind = content.one_content(body)
        reply_to = content.message_id(body.reply_to, "replyTo") if body.reply_to is not None else None
        if kind == "text":
            return cls(text=content.text(body.text), reply_to=reply_to, mentions=mentions)
        if kind == "location" and body.location is not None:
            return cls(location=content.location(body.location), reply_to=reply_to, mentions=mentions)
        if kind == "contacts" and body.contacts is not None:
            return cls(contacts=content.contacts(body.contacts), reply_to=reply_to, mentions=mentions)
        if kind == "poll" and body.poll is not None:
            return cls(poll=content.poll(body.poll), reply_to=reply_to, mentions=mentions)
        if kind == "reaction" and body.reaction is not None:
            return cls(reaction=content.reaction(body.reaction))
        raise content.bad(f"'{kind}' cannot be sent by this route")

    @property
    def fingerprint(self) -> Any:
        """The message's meaning, for Idempotency-Key: the same key with another message is refused."""
        return repr(self)

    async def resolve(self, messages: MessageService, token: str) -> tuple[str | None, OutgoingMessage]:
        """The message to send, with its quote or reaction target looked up; and the chat a reaction
        must go to (its target's), None for every other kind."""
        if self.reaction is not None:
            chat, reaction = await messages.reaction(token, *self.reaction)
            return chat, OutgoingMessage(reaction=reaction)
        quoted: QuotedRef | None = await messages.quoted(token, self.reply_to) if self.reply_to else None
        message = OutgoingMessage(
            text=self.text,
            location=self.location,
            contacts=self.contacts,
            poll=self.poll,
            mentions=self.mentions,
        )
        return None, replace(message, reply_to=quoted) if quoted else message


__all__ = ["Draft", "plain"]
