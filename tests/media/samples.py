"""Small real media made in the test: images with Pillow, audio with ``wave``, video with ffmpeg."""

from __future__ import annotations

import io
import math
import struct
import subprocess
import wave
from functools import cache
from pathlib import Path

from PIL import Image


def png(size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def bmp() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(buf, "BMP")
    return buf.getvalue()


def noisy_jpeg(nbytes: int) -> bytes:
    """A real JPEG of about ``nbytes`` (random pixels barely compress)."""
    import random

    rnd = random.Random(7)
    side = int(math.sqrt(nbytes / 1.1))
    img = Image.frombytes("RGB", (side, side), rnd.randbytes(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate))
        )
        w.writeframes(frames)
    return buf.getvalue()


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj "
    b"3 0 obj<</Type/Page/MediaBox[0 0 3 3]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@cache
def _ffmpeg_video(args: tuple[str, ...], suffix: str, tmp: str) -> bytes:
    out = Path(tmp) / f"sample{suffix}"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
         "-t", "1", *args, str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


def webm(tmp: Path) -> bytes:
    """VP8 in WebM: a video WhatsApp cannot play (converted to H.264 MP4)."""
    return _ffmpeg_video(("-c:v", "libvpx", "-b:v", "100k"), ".webm", str(tmp))


def mp4(tmp: Path) -> bytes:
    """H.264 in MP4: sent as it is."""
    return _ffmpeg_video(("-c:v", "libx264", "-pix_fmt", "yuv420p"), ".mp4", str(tmp))
