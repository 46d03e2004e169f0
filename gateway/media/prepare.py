"""Turn stored bytes into what WhatsApp accepts for a type: converted when needed, with a thumbnail.

The result names a local file (a driver never receives a URL) plus what the
message carries about it. Conversions and thumbnails are remembered per input
hash, so sending one upload to a hundred recipients converts it once.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from gateway.media.convert import Converter, Probe
from gateway.media.mime import PLAYABLE_AUDIO, PLAYABLE_IMAGES, MediaType
from gateway.media.storage import MediaFiles, StoredFile


@dataclass(frozen=True, slots=True)
class PreparedMedia:
    """The fields of the seam's ``OutgoingMedia`` (gateway.drivers.base), ready to send."""

    type: MediaType
    path: Path
    mimetype: str
    size: int
    sha256: str
    filename: str | None
    caption: str | None
    voice_note: bool
    thumbnail: bytes | None
    duration_s: float | None
    width: int | None
    height: int | None


@dataclass(frozen=True, slots=True)
class _Form:
    """One prepared form of one input: the file to send and its facts."""

    file: StoredFile
    mimetype: str
    thumbnail: bytes | None
    probe: Probe


class Preparer:
    def __init__(self, files: MediaFiles, converter: Converter, max_bytes: int, cache_size: int = 256) -> None:
        self.files = files
        self.converter = converter
        self.max_bytes = max_bytes
        self._cache: OrderedDict[tuple[str, str], _Form] = OrderedDict()
        self._cache_size = cache_size

    async def prepare(
        self,
        source: StoredFile,
        mime: str,
        kind: MediaType,
        *,
        voice_note: bool = False,
        filename: str | None = None,
        caption: str | None = None,
    ) -> PreparedMedia:
        target = "voice" if voice_note and kind == "audio" else kind
        key = (source.sha256, target)
        form = self._cache.get(key)
        if form is None or not form.file.path.exists():
            form = await self._form(source, mime, target)
            self._cache[key] = form
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return PreparedMedia(
            type=kind,
            path=form.file.path,
            mimetype=form.mimetype,
            size=form.file.size,
            sha256=form.file.sha256,
            filename=filename,
            caption=caption,
            voice_note=target == "voice",
            thumbnail=form.thumbnail,
            duration_s=form.probe.duration_s,
            width=form.probe.width,
            height=form.probe.height,
        )

    async def _form(self, src: StoredFile, mime: str, target: str) -> _Form:
        conv = self.converter
        if target == "document":
            return _Form(src, mime, None, Probe())
        if target == "voice":
            probe = await conv.probe(src.path)
            if mime == "audio/ogg" and probe.audio_codec == "opus" and probe.video_codec is None:
                return _Form(src, "audio/ogg; codecs=opus", None, probe)
            out = await self._convert(src, conv.voice_note, ".ogg")
            return _Form(out, "audio/ogg; codecs=opus", None, await conv.probe(out.path))
        if target == "audio":
            probe = await conv.probe(src.path)
            if mime in PLAYABLE_AUDIO:
                return _Form(src, mime, None, probe)
            out = await self._convert(src, conv.playable_audio, ".m4a")
            return _Form(out, "audio/mp4", None, await conv.probe(out.path))
        if target == "sticker":
            if mime == "image/webp":
                return _Form(src, mime, None, await conv.probe(src.path))
            out = await self._convert(src, conv.sticker, ".webp")
            return _Form(out, "image/webp", None, Probe(width=512, height=512))
        if target == "image":
            out = src if mime in PLAYABLE_IMAGES else await self._convert(src, conv.jpeg, ".jpg")
            mimetype = mime if out is src else "image/jpeg"
            return _Form(out, mimetype, await self._thumbnail(out), await conv.probe(out.path))
        # video
        probe = await conv.probe(src.path)
        playable = (
            probe.container is not None
            and "mp4" in probe.container
            and probe.video_codec == "h264"
            and probe.audio_codec in (None, "aac")
        )
        out = src
        if not playable:
            out = await self._convert(src, conv.playable_video, ".mp4")
            probe = await conv.probe(out.path)
        return _Form(out, "video/mp4", await self._thumbnail(out), probe)

    async def _convert(self, src: StoredFile, step: object, suffix: str) -> StoredFile:
        scratch = self.files.scratch(suffix)
        try:
            await step(src.path, scratch)  # type: ignore[operator]
            return self.files.adopt(scratch, max(self.max_bytes, src.size * 4))
        finally:
            scratch.unlink(missing_ok=True)

    async def _thumbnail(self, src: StoredFile) -> bytes | None:
        scratch = self.files.scratch(".jpg")
        try:
            return await self.converter.thumbnail(src.path, scratch)
        finally:
            scratch.unlink(missing_ok=True)
