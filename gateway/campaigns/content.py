"""What a campaign sends (CONTRACT §11 content), stored as JSON with the campaign.

Text and a media caption are templates (:mod:`gateway.campaigns.template`);
media is an upload id (``POST /media``), prepared again for each send (the
media service caches conversions, so a video is converted once). Location,
contacts and polls are sent as given.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.campaigns.template import Template, compile_template
from gateway.drivers.base import ContactCard, Location, OutgoingMessage, Poll
from gateway.media import outgoing
from gateway.media.errors import MediaError
from gateway.media.outgoing import MediaSpec
from gateway.media.service import MediaService


class MediaPart(msgspec.Struct, kw_only=True):
    id: str
    type: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice_note: bool = False


class Content(msgspec.Struct, kw_only=True, omit_defaults=True):
    text: str | None = None
    media: MediaPart | None = None
    location: Location | None = None
    contacts: tuple[ContactCard, ...] = ()
    poll: Poll | None = None
    mentions: tuple[str, ...] = ()  # JIDs

    def templates(self) -> list[Template]:
        out = []
        if self.text is not None:
            out.append(compile_template(self.text))
        if self.media is not None and self.media.caption:
            out.append(compile_template(self.media.caption))
        return out

    def to_json(self) -> str:
        return msgspec.json.encode(self).decode()

    @classmethod
    def from_json(cls, raw: str) -> Content:
        return msgspec.json.decode(raw, type=cls)

    def summary(self) -> dict[str, Any]:
        """The message as the API shows it back (the templates unrendered)."""
        return msgspec.to_builtins(self, str_keys=True)  # type: ignore[no-any-return]


class FailedContent(Exception):
    """The message cannot be built any more (its upload expired or was deleted): the campaign fails."""


class Builder:
    """Builds each recipient's message from the stored content."""

    def __init__(self, content: Content, media: MediaService | None, owner_id: int | None) -> None:
        self.content = content
        self.media = media
        self.owner_id = owner_id
        self.text = compile_template(content.text) if content.text is not None else None
        caption = content.media.caption if content.media is not None else None
        self.caption = compile_template(caption) if caption else None

    async def build(self, values: dict[str, str | None], message_id: str) -> OutgoingMessage:
        c = self.content
        if c.media is not None:
            if self.media is None:
                raise FailedContent("media is not available in this gateway")
            spec = MediaSpec(
                type=c.media.type,
                id=c.media.id,
                filename=c.media.filename,
                caption=self.caption.render(values) if self.caption else None,
                voice_note=c.media.voice_note,
            )
            try:
                _, prepared = await outgoing.prepare(self.media, spec, self.owner_id, self.owner_id is None)
            except MediaError as exc:
                raise FailedContent(f"the media upload {c.media.id} cannot be sent any more: {exc}") from exc
            return OutgoingMessage(media=outgoing.seam_media(prepared), mentions=c.mentions, id=message_id)
        return OutgoingMessage(
            text=self.text.render(values) if self.text is not None else None,
            location=c.location,
            contacts=c.contacts,
            poll=c.poll,
            mentions=c.mentions,
            id=message_id,
        )
