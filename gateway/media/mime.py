"""The MIME type of media, read from its bytes — never taken from the caller alone.

python-magic (libmagic) rather than ``filetype``: neonize already depends on
python-magic, so libmagic is installed wherever the gateway runs and this adds
no dependency; and libmagic knows far more formats than filetype's fixed
signature table — plain text, CSV, Office and OpenDocument files, Opus vs
Vorbis in OGG — which matters for documents, the most common media a CRM sends.
Its cost is a system library (``libmagic1``, already in the Dockerfile's image
for neonize) and a C call that runs off the event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import magic

from gateway.media.errors import invalid_media

MediaType = Literal["image", "video", "audio", "document", "sticker"]
MEDIA_TYPES: tuple[MediaType, ...] = ("image", "video", "audio", "document", "sticker")

# Images WhatsApp shows as such; other image formats (BMP, TIFF…) are converted to JPEG.
PLAYABLE_IMAGES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
# Audio WhatsApp plays inline; other audio (WAV, FLAC…) is converted to AAC in MP4.
PLAYABLE_AUDIO = frozenset({"audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg", "audio/amr", "audio/x-m4a"})


# libmagic names a few common types in ways WhatsApp does not expect.
_RENAMED = {"audio/x-wav": "audio/wav", "application/ogg": "audio/ogg", "video/x-m4v": "video/mp4"}


def detect_sync(path: Path) -> str:
    mime = str(magic.from_file(str(path), mime=True))
    return _RENAMED.get(mime, mime)


def detect_bytes(data: bytes) -> str:
    """The MIME type of bytes already in memory (libmagic reads the head only)."""
    mime = str(magic.from_buffer(data[: 1 << 20], mime=True))
    return _RENAMED.get(mime, mime)


async def detect(path: Path) -> str:
    return await asyncio.to_thread(detect_sync, path)


def family(mime: str) -> MediaType:
    """§11's default ``type`` for a detected MIME type."""
    head = mime.split("/", 1)[0]
    if head == "image":
        return "image"
    if head == "video":
        return "video"
    if head == "audio":
        return "audio"
    return "document"


def resolve_type(requested: str | None, mime: str) -> MediaType:
    """The type to send: the caller's, when the bytes can be sent as it, else the detected family.

    INVALID_MEDIA when the caller asks for a type the bytes are not (a PDF as an image).
    """
    detected = family(mime)
    if requested is None:
        return detected
    if requested not in MEDIA_TYPES:
        raise invalid_media(f"'type' must be one of {', '.join(MEDIA_TYPES)}")
    if requested == "document":
        return "document"
    if requested == "sticker":
        if detected not in ("image", "video"):
            raise invalid_media(f"unsupported media: a sticker must be an image, not {mime}")
        return "sticker"
    if requested != detected:
        raise invalid_media(f"unsupported media: {mime} cannot be sent as {requested}")
    return detected
