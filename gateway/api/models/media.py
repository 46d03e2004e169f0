"""The ``media`` object of ``POST /messages`` (CONTRACT §11) and what an upload answers.

Types are checked when the body is decoded (INVALID_REQUEST); the media rules — exactly one
source, a type the bytes can be — are the media service's (INVALID_MEDIA), after INVALID_MESSAGE.
"""

from __future__ import annotations

from typing import Annotated

from gateway.api.models.base import MAX_TEXT, Body, described, rules

MEDIA_TYPES = ["image", "video", "audio", "document", "sticker"]


class MediaIn(Body):
    """Exactly one source: ``url`` (fetched by the gateway), ``data`` (base64) or ``id`` (an upload)."""

    type: Annotated[str, rules(enum=MEDIA_TYPES)] | None = None
    url: Annotated[str, described("http(s) URL the gateway fetches", format="uri")] | None = None
    data: Annotated[str, described("the file, base64 (a data: URL too)")] | None = None
    id: (
        Annotated[str, described("an upload's id from POST /media", examples=["med_3f2a9c0d1e4b5a6978a1b2c3"])] | None
    ) = None
    mimetype: Annotated[str, described("a hint only: the type is detected from the bytes")] | None = None
    filename: Annotated[str, rules(maxLength=255)] | None = None
    caption: Annotated[str, rules(maxLength=MAX_TEXT)] | None = None
    voice_note: Annotated[bool, described("send audio as a voice note (OGG/Opus)")] | None = None
