"""Outgoing media at the neonize seam, on neonize's real protobuf classes: what is uploaded (the local
file the gateway prepared, as the right upload kind) and the message that names the upload, per type."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.drivers.base import DriverOptions, OutgoingMedia, OutgoingMessage, QuotedRef, SendError
from gateway.drivers.neonize.media import build_media_message, upload_kind

nz = importlib.import_module("neonize.proto.Neonize_pb2")
wa = importlib.import_module("neonize.proto.waE2E.WAWebProtobufsE2E_pb2")
NzMediaType = importlib.import_module("neonize.utils.enum").MediaType

UPLOAD = nz.UploadResponse(
    url="https://mmg.whatsapp.net/x",
    DirectPath="/v/t62/x",
    MediaKey=b"k" * 32,
    FileEncSHA256=b"e" * 32,
    FileSHA256=b"s" * 32,
    FileLength=1234,
)


def media(kind: str, path: Path, **kw: Any) -> OutgoingMedia:
    return OutgoingMedia(kind, path, kw.pop("mimetype", "image/jpeg"), 1234, "00" * 32, **kw)  # type: ignore[arg-type]


def test_upload_kinds() -> None:
    assert upload_kind("image") == NzMediaType.MediaImage and upload_kind("sticker") == NzMediaType.MediaImage
    assert upload_kind("video") == NzMediaType.MediaVideo and upload_kind("audio") == NzMediaType.MediaAudio
    assert upload_kind("document") == NzMediaType.MediaDocument


def test_image_carries_the_upload_caption_thumbnail_and_size(tmp_path: Path) -> None:
    m = build_media_message(
        media("image", tmp_path / "a.jpg", caption="look", thumbnail=b"\xff\xd8thumb", width=640, height=480), UPLOAD
    )
    img = m.imageMessage
    assert (img.URL, img.directPath, img.mediaKey, img.fileSHA256, img.fileEncSHA256, img.fileLength) == (
        UPLOAD.url,
        UPLOAD.DirectPath,
        UPLOAD.MediaKey,
        UPLOAD.FileSHA256,
        UPLOAD.FileEncSHA256,
        1234,
    )
    assert (img.mimetype, img.caption, img.JPEGThumbnail, img.width, img.height) == (
        "image/jpeg",
        "look",
        b"\xff\xd8thumb",
        640,
        480,
    )


def test_voice_note_is_ptt_audio_with_seconds(tmp_path: Path) -> None:
    m = build_media_message(
        media("audio", tmp_path / "v.ogg", mimetype="audio/ogg; codecs=opus", voice_note=True, duration_s=3.6), UPLOAD
    )
    assert m.audioMessage.PTT is True and m.audioMessage.seconds == 4
    assert m.audioMessage.mimetype == "audio/ogg; codecs=opus"
    plain = build_media_message(media("audio", tmp_path / "a.m4a", mimetype="audio/mp4"), UPLOAD)
    assert plain.audioMessage.PTT is False


def test_video_document_and_sticker(tmp_path: Path) -> None:
    video = build_media_message(
        media("video", tmp_path / "v.mp4", mimetype="video/mp4", caption="clip", duration_s=10.2, thumbnail=b"t"),
        UPLOAD,
    )
    assert (
        video.videoMessage.seconds == 10
        and video.videoMessage.caption == "clip"
        and video.videoMessage.JPEGThumbnail == b"t"
    )
    doc = build_media_message(
        media("document", tmp_path / "i.pdf", mimetype="application/pdf", filename="invoice.pdf", caption="Inv"),
        UPLOAD,
    )
    assert (doc.documentMessage.fileName, doc.documentMessage.title, doc.documentMessage.caption) == (
        "invoice.pdf",
        "invoice.pdf",
        "Inv",
    )
    sticker = build_media_message(
        media("sticker", tmp_path / "s.webp", mimetype="image/webp", width=512, height=512), UPLOAD
    )
    assert sticker.stickerMessage.mimetype == "image/webp" and sticker.stickerMessage.width == 512


def test_quote_and_mentions_go_in_the_media_context(tmp_path: Path) -> None:
    from gateway.drivers.neonize.outgoing import context_info

    message = OutgoingMessage(
        media=media("image", tmp_path / "a.jpg"),
        reply_to=QuotedRef(
            id="3EB0Q", chat="60198765432@s.whatsapp.net", sender="60198765432", from_me=False, text="hi"
        ),
        mentions=("60198765432@s.whatsapp.net",),
    )
    m = build_media_message(message.media, UPLOAD, context_info(message))  # type: ignore[arg-type]
    ctx = m.imageMessage.contextInfo
    assert ctx.stanzaID == "3EB0Q" and list(ctx.mentionedJID) == ["60198765432@s.whatsapp.net"]


class FakeClient:
    """Stands in for neonize's client: records what is uploaded and sent."""

    def __init__(self) -> None:
        self.uploads: list[tuple[bytes, Any]] = []
        self.sent: list[tuple[Any, Any]] = []

    def upload(self, data: bytes, kind: Any) -> Any:
        self.uploads.append((data, kind))
        return UPLOAD

    def send_message(self, jid: Any, message: Any) -> Any:
        self.sent.append((jid, message))
        return nz.SendResponse(ID="3EB0SENT", Timestamp=1_771_410_600)


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[Any]:
    from gateway.drivers.neonize.driver import NeonizeDriver

    d = NeonizeDriver("60123456789", DriverOptions(data_dir=tmp_path))
    d._client = FakeClient()
    d._connected = True
    yield d
    d._connected = False
    await d.close()


async def test_the_driver_uploads_the_local_file_then_sends(driver: Any, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8jpegbytes")
    out = media("image", path, caption="hello")
    sent = await driver.send("60198765432@s.whatsapp.net", OutgoingMessage(media=out))
    assert sent.id == "3EB0SENT"
    ((data, kind),) = driver._client.uploads
    assert data == b"\xff\xd8jpegbytes" and kind == NzMediaType.MediaImage
    ((jid, message),) = driver._client.sent
    assert jid.User == "60198765432" and message.imageMessage.caption == "hello"
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_missing_file_is_send_error(driver: Any, tmp_path: Path) -> None:
    with pytest.raises(SendError, match="cannot read the media file"):
        await driver.send("60198765432@s.whatsapp.net", OutgoingMessage(media=media("image", tmp_path / "gone.jpg")))
    assert driver._client.sent == []
