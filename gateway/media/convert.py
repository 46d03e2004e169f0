"""ffmpeg conversions and thumbnails, off the event loop and bounded.

Each ffmpeg/ffprobe run is a child process awaited with asyncio (the loop never
blocks on it), at most ``MEDIA_CONVERT_CONCURRENCY`` at once (a semaphore: the
machine's cores are shared with every device), and killed after
``MEDIA_CONVERT_TIMEOUT_S``. Any failure — ffmpeg missing, bad input, the time
limit — is ``INVALID_MEDIA`` with the reason, never a half-converted send.

What WhatsApp needs, per type:
- voice notes: OGG/Opus, mono (``audio/ogg; codecs=opus``);
- video: H.264 video + AAC audio in MP4 (anything else is converted);
- stickers: WebP, 512×512 (transparent padding);
- audio it cannot play inline (WAV, FLAC…): AAC in MP4; images it cannot show (BMP, TIFF…): JPEG;
- images and video: a small JPEG thumbnail, sent with the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.media.errors import invalid_media

THUMB_PX = 100  # WhatsApp's inline thumbnails are about this size; bigger only costs bytes


@dataclass(frozen=True, slots=True)
class Probe:
    """What ffprobe says about a file (all None when it cannot tell)."""

    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None


class Converter:
    def __init__(self, concurrency: int, timeout_s: float, ffmpeg: str | None = None) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self.timeout_s = timeout_s
        self.ffmpeg = ffmpeg or shutil.which("ffmpeg")
        self.ffprobe = shutil.which("ffprobe") if ffmpeg is None else str(Path(ffmpeg).with_name("ffprobe"))

    async def _run(self, program: str | None, args: list[str], what: str) -> bytes:
        """Run one bounded child process; its stdout. INVALID_MEDIA on any failure."""
        if program is None:
            raise invalid_media(f"{what} failed: ffmpeg is not installed")
        async with self._slots:
            proc = await asyncio.create_subprocess_exec(
                program,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), self.timeout_s)
            except TimeoutError as exc:
                raise invalid_media(f"{what} failed: took longer than {self.timeout_s:g} s") from exc
            finally:
                if proc.returncode is None:  # timed out or cancelled: never leave ffmpeg running
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    with contextlib.suppress(Exception):
                        await proc.wait()
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            reason = lines[-1] if lines else f"exit code {proc.returncode}"
            raise invalid_media(f"{what} failed: {reason[:200]}")
        return out

    async def _ffmpeg(self, src: Path, dst: Path, args: list[str], what: str) -> None:
        base = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(src)]
        await self._run(self.ffmpeg, [*base, *args, str(dst)], what)

    async def probe(self, path: Path) -> Probe:
        try:
            out = await self._run(
                self.ffprobe,
                ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
                "probing the media",
            )
            info: dict[str, Any] = json.loads(out or b"{}")
        except (ValueError, Exception):
            return Probe()
        streams: list[dict[str, Any]] = info.get("streams") or []
        video = next((s for s in streams if s.get("codec_type") == "video"), {})
        audio = next((s for s in streams if s.get("codec_type") == "audio"), {})
        fmt: dict[str, Any] = info.get("format") or {}
        try:
            duration = float(fmt.get("duration") or video.get("duration") or audio.get("duration") or 0) or None
        except ValueError:
            duration = None
        return Probe(
            container=fmt.get("format_name"),
            video_codec=video.get("codec_name"),
            audio_codec=audio.get("codec_name"),
            duration_s=duration,
            width=video.get("width"),
            height=video.get("height"),
        )

    async def voice_note(self, src: Path, dst: Path) -> None:
        await self._ffmpeg(
            src,
            dst,
            ["-vn", "-map_metadata", "-1", "-c:a", "libopus", "-b:a", "32k", "-ac", "1", "-ar", "48000", "-f", "ogg"],
            "converting to a voice note",
        )

    async def playable_audio(self, src: Path, dst: Path) -> None:
        await self._ffmpeg(src, dst, ["-vn", "-c:a", "aac", "-b:a", "128k", "-f", "mp4"], "converting the audio")

    async def playable_video(self, src: Path, dst: Path) -> None:
        await self._ffmpeg(
            src,
            dst,
            [
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
                "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4",
            ],
            "converting the video to H.264/AAC MP4",
        )  # fmt: skip

    async def sticker(self, src: Path, dst: Path) -> None:
        fit = (
            "scale=512:512:force_original_aspect_ratio=decrease,format=rgba,"
            "pad=512:512:(ow-iw)/2:(oh-ih)/2:color=0x00000000"
        )
        await self._ffmpeg(
            src,
            dst,
            ["-vf", fit, "-frames:v", "1", "-c:v", "libwebp", "-lossless", "0", "-q:v", "80", "-f", "webp"],
            "converting the sticker to WebP",
        )

    async def jpeg(self, src: Path, dst: Path) -> None:
        await self._ffmpeg(src, dst, ["-frames:v", "1", "-q:v", "3", "-f", "mjpeg"], "converting the image to JPEG")

    async def thumbnail(self, src: Path, dst: Path) -> bytes:
        """A small JPEG of an image or of a video's first frame."""
        scale = f"scale='min({THUMB_PX},iw)':-2"
        await self._ffmpeg(src, dst, ["-frames:v", "1", "-vf", scale, "-q:v", "5", "-f", "mjpeg"], "making a thumbnail")
        return dst.read_bytes()
