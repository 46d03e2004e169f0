"""ffmpeg conversions: what WhatsApp needs per type, off the loop, bounded in time and concurrency."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from gateway.media.convert import Converter
from gateway.media.errors import MediaError
from gateway.media.mime import detect_sync
from gateway.media.prepare import Preparer
from gateway.media.storage import MediaFiles
from tests.media import samples


@pytest.fixture
def files(tmp_path: Path) -> MediaFiles:
    f = MediaFiles(tmp_path / "media")
    f.prepare()
    return f


@pytest.fixture
def preparer(files: MediaFiles) -> Preparer:
    return Preparer(files, Converter(2, 60), 10**8)


def test_mime_is_read_from_the_bytes(tmp_path: Path) -> None:
    for data, mime in [
        (samples.png(), "image/png"),
        (samples.jpeg(), "image/jpeg"),
        (samples.wav(), "audio/wav"),
        (samples.PDF, "application/pdf"),
        (samples.webm(tmp_path), "video/webm"),
        (b"just some words\n", "text/plain"),
    ]:
        p = tmp_path / "x"
        p.write_bytes(data)
        assert detect_sync(p) == mime


async def test_voice_note_becomes_ogg_opus(files: MediaFiles, preparer: Preparer) -> None:
    src = files.put(samples.wav(1.0), 10**8)
    out = await preparer.prepare(src, "audio/wav", "audio", voice_note=True)
    assert out.mimetype == "audio/ogg; codecs=opus" and out.voice_note
    assert out.path != src.path and detect_sync(out.path) == "audio/ogg"
    probe = await preparer.converter.probe(out.path)
    assert probe.audio_codec == "opus" and out.duration_s is not None and 0.9 < out.duration_s < 1.2


async def test_audio_whatsapp_cannot_play_becomes_aac(files: MediaFiles, preparer: Preparer) -> None:
    out = await preparer.prepare(files.put(samples.wav(), 10**8), "audio/wav", "audio")
    assert out.mimetype == "audio/mp4" and (await preparer.converter.probe(out.path)).audio_codec == "aac"


async def test_webm_video_becomes_h264_aac_mp4_with_a_thumbnail(
    tmp_path: Path, files: MediaFiles, preparer: Preparer
) -> None:
    out = await preparer.prepare(files.put(samples.webm(tmp_path), 10**8), "video/webm", "video")
    probe = await preparer.converter.probe(out.path)
    assert out.mimetype == "video/mp4" and probe.video_codec == "h264" and "mp4" in (probe.container or "")
    assert out.thumbnail is not None and out.thumbnail[:2] == b"\xff\xd8"
    assert (out.width, out.height) == (64, 48)


async def test_playable_mp4_is_sent_as_it_is(tmp_path: Path, files: MediaFiles, preparer: Preparer) -> None:
    src = files.put(samples.mp4(tmp_path), 10**8)
    out = await preparer.prepare(src, "video/mp4", "video")
    assert out.path == src.path and out.sha256 == src.sha256 and out.thumbnail


async def test_sticker_becomes_512px_webp(files: MediaFiles, preparer: Preparer) -> None:
    out = await preparer.prepare(files.put(samples.png(), 10**8), "image/png", "sticker")
    assert out.mimetype == "image/webp" and detect_sync(out.path) == "image/webp"
    probe = await preparer.converter.probe(out.path)
    assert (probe.width, probe.height) == (512, 512)


async def test_images_get_a_thumbnail_and_bmp_becomes_jpeg(files: MediaFiles, preparer: Preparer) -> None:
    png = await preparer.prepare(files.put(samples.png((400, 300)), 10**8), "image/png", "image")
    assert png.mimetype == "image/png" and png.thumbnail and png.thumbnail[:2] == b"\xff\xd8"
    assert (png.width, png.height) == (400, 300)
    bmp = await preparer.prepare(files.put(samples.bmp(), 10**8), "image/bmp", "image")
    assert bmp.mimetype == "image/jpeg" and detect_sync(bmp.path) == "image/jpeg"


async def test_a_document_is_untouched(files: MediaFiles, preparer: Preparer) -> None:
    src = files.put(samples.PDF, 10**8)
    out = await preparer.prepare(src, "application/pdf", "document", filename="invoice.pdf")
    assert out.path == src.path and out.filename == "invoice.pdf" and out.thumbnail is None


async def test_conversions_are_remembered_per_input(files: MediaFiles, preparer: Preparer) -> None:
    src = files.put(samples.wav(), 10**8)
    a = await preparer.prepare(src, "audio/wav", "audio", voice_note=True)
    calls = 0
    real = preparer.converter.voice_note

    async def counting(s: Path, d: Path) -> None:
        nonlocal calls
        calls += 1
        await real(s, d)

    preparer.converter.voice_note = counting  # type: ignore[method-assign]
    b = await preparer.prepare(src, "audio/wav", "audio", voice_note=True)
    assert calls == 0 and a.path == b.path


async def test_undecodable_media_is_invalid_media_with_the_reason(
    tmp_path: Path, files: MediaFiles, preparer: Preparer
) -> None:
    broken = samples.webm(tmp_path)[:300]
    with pytest.raises(MediaError) as err:
        await preparer.prepare(files.put(broken, 10**8), "video/webm", "video")
    assert err.value.code == "INVALID_MEDIA" and "converting the video" in err.value.message
    assert [p.name for p in files.tmp.iterdir()] == []


def fake_ffmpeg(tmp_path: Path, body: str) -> str:
    script = tmp_path / "bin" / "ffmpeg"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


async def test_a_conversion_over_the_time_limit_is_killed(tmp_path: Path) -> None:
    conv = Converter(1, 0.3, ffmpeg=fake_ffmpeg(tmp_path, "exec sleep 30\n"))
    with pytest.raises(MediaError) as err:
        await conv.voice_note(tmp_path / "in", tmp_path / "out")
    assert err.value.code == "INVALID_MEDIA" and "longer than 0.3 s" in err.value.message


async def test_conversions_run_at_most_concurrency_at_once(tmp_path: Path) -> None:
    log = tmp_path / "log"
    conv = Converter(1, 30, ffmpeg=fake_ffmpeg(tmp_path, f"echo start >> {log}; sleep 0.2; echo end >> {log}\n"))
    await asyncio.gather(*(conv.jpeg(tmp_path / "in", tmp_path / f"out{i}") for i in range(3)))
    assert log.read_text().split() == ["start", "end"] * 3


async def test_missing_ffmpeg_is_invalid_media(tmp_path: Path) -> None:
    conv = Converter(1, 5, ffmpeg=str(tmp_path / "nowhere" / "ffmpeg"))
    conv.ffmpeg = None
    with pytest.raises(MediaError, match="ffmpeg is not installed"):
        await conv.sticker(tmp_path / "a", tmp_path / "b")
