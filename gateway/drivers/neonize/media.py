"""Outgoing media for neonize: the bytes the gateway prepared, uploaded, then the protobuf whatsmeow sends.

This is what neonize's ``send_image`` / ``send_video`` / ``send_audio(ptt=…)`` /
``send_document`` / ``send_sticker`` do — upload, then an ``imageMessage`` (…) with
the upload's keys — split in two so that the gateway stays in charge of the bytes:
neonize's helpers would fetch a URL themselves (no timeout, no size cap), sniff the
MIME type again and make their own thumbnails with PIL; here the file is the local
one the media service prepared (converted, with its thumbnail and MIME type), and
the building is a pure function tested with real protobufs.
"""

from __future__ import annotations

from typing import Any

from gateway.drivers.base import MediaType, OutgoingMedia
from gateway.drivers.neonize.patches import wa

# WhatsApp's upload kinds (neonize.utils.enum.MediaType values): stickers are uploaded as images.
UPLOAD_KIND: dict[MediaType, int] = {"image": 0, "video": 1, "audio": 2, "document": 3, "sticker": 0}


def upload_kind(kind: MediaType) -> Any:
    """neonize's ``MediaType`` member for an upload of ``kind``."""
    from neonize.utils.enum import MediaType as NzMediaType

    return NzMediaType(UPLOAD_KIND[kind])


def _uploaded(upload: Any) -> dict[str, Any]:
    """The fields every media message takes from the upload's answer."""
    return {
        "URL": upload.url,
        "directPath": upload.DirectPath,
        "mediaKey": upload.MediaKey,
        "fileEncSHA256": upload.FileEncSHA256,
        "fileSHA256": upload.FileSHA256,
        "fileLength": upload.FileLength,
    }


def build_media_message(media: OutgoingMedia, upload: Any, ctx: wa.ContextInfo | None = None) -> wa.Message:
    """The message for prepared ``media`` whose bytes were uploaded as ``upload`` (quote/mentions in ``ctx``)."""
    base = {**_uploaded(upload), "mimetype": media.mimetype}
    caption = {"caption": media.caption} if media.caption else {}
    seconds = {"seconds": round(media.duration_s)} if media.duration_s else {}
    size = {k: v for k, v in (("width", media.width), ("height", media.height)) if v}
    thumb = {"JPEGThumbnail": media.thumbnail} if media.thumbnail else {}
    if media.type == "image":
        msg = wa.Message(imageMessage=wa.ImageMessage(**base, **caption, **size, **thumb))
        part: Any = msg.imageMessage
    elif media.type == "video":
        msg = wa.Message(videoMessage=wa.VideoMessage(**base, **caption, **seconds, **size, **thumb))
        part = msg.videoMessage
    elif media.type == "audio":
        msg = wa.Message(audioMessage=wa.AudioMessage(**base, **seconds, PTT=media.voice_note))
        part = msg.audioMessage
    elif media.type == "sticker":
        msg = wa.Message(stickerMessage=wa.StickerMessage(**base, **size))
        part = msg.stickerMessage
    else:
        name = media.filename or "file"
        msg = wa.Message(documentMessage=wa.DocumentMessage(**base, **caption, fileName=name, title=name, **thumb))
        part = msg.documentMessage
    if ctx is not None:
        part.contextInfo.CopyFrom(ctx)
    return msg
