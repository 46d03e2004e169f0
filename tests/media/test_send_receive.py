"""The media halves of sending (one source → prepared file) and receiving (download → stored → reported)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from gateway.media import incoming, outgoing
from gateway.media.errors import MediaError
from gateway.media.outgoing import MediaSpec
from gateway.media.service import MediaService
from gateway.net import GuardedClient
from gateway.store import Store
from tests.media import samples
from tests.support.settings import make_settings


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[MediaService]:
    store = await Store.open(tmp_path)
    http = GuardedClient()
    service = MediaService(replace(make_settings(tmp_path), media_fetch_timeout_ms=300), store, http=http)
    await service.start(prune_every_s=None)
    yield service
    await service.stop()
    await http.close()
    await store.close()


async def code(coro: object) -> str:
    with pytest.raises(MediaError) as err:
        await coro  # type: ignore[misc]
    return err.value.code


async def test_exactly_one_source(svc: MediaService) -> None:
    b64 = base64.b64encode(samples.PDF).decode()
    assert await code(outgoing.prepare(svc, MediaSpec(), 1, False)) == "INVALID_MEDIA"
    assert await code(outgoing.prepare(svc, MediaSpec(data=b64, id="med_x"), 1, False)) == "INVALID_MEDIA"
    assert await code(outgoing.prepare(svc, MediaSpec(url="http://a/b", data=b64), 1, False)) == "INVALID_MEDIA"


async def test_by_data_by_id_and_the_type_follows_the_bytes(svc: MediaService) -> None:
    row, prepared = await outgoing.prepare(svc, MediaSpec(data=base64.b64encode(samples.png()).decode()), 1, False)
    assert prepared.type == "image" and prepared.thumbnail and prepared.sha256 == row.sha256
    row2, again = await outgoing.prepare(svc, MediaSpec(id=row.id, caption="hi", filename="p.png"), 1, False)
    assert row2.id == row.id and again.caption == "hi" and again.filename == "p.png"
    _, doc = await outgoing.prepare(
        svc, MediaSpec(data=base64.b64encode(samples.PDF).decode(), filename="i.pdf"), 1, False
    )
    assert doc.type == "document" and doc.filename == "i.pdf" and doc.mimetype == "application/pdf"


async def test_an_upload_of_another_account_or_unknown_is_invalid_media(svc: MediaService) -> None:
    row, _ = await outgoing.prepare(svc, MediaSpec(data=base64.b64encode(samples.PDF).decode()), 1, False)
    assert await code(outgoing.prepare(svc, MediaSpec(id=row.id), 2, False)) == "INVALID_MEDIA"
    assert await code(outgoing.prepare(svc, MediaSpec(id="med_nope"), 1, False)) == "INVALID_MEDIA"


async def test_an_unsupported_type_leaves_nothing_behind(svc: MediaService) -> None:
    spec = MediaSpec(type="image", data=base64.b64encode(samples.PDF).decode())
    with pytest.raises(MediaError, match="cannot be sent as image"):
        await outgoing.prepare(svc, spec, 1, False)
    assert await svc.store.media_total_bytes() == 0
    assert await code(outgoing.prepare(svc, MediaSpec(type="gif", data="AAAA"), 1, False)) == "INVALID_MEDIA"
    assert (
        await code(
            outgoing.prepare(svc, MediaSpec(voice_note=True, data=base64.b64encode(samples.PDF).decode()), 1, False)
        )
        == "INVALID_MEDIA"
    )


async def test_a_voice_note_by_data_is_converted(svc: MediaService) -> None:
    _, prepared = await outgoing.prepare(
        svc, MediaSpec(data=base64.b64encode(samples.wav()).decode(), voice_note=True), 1, False
    )
    assert prepared.voice_note and prepared.mimetype == "audio/ogg; codecs=opus" and prepared.type == "audio"


@dataclass(frozen=True)
class Incoming:
    type: str = "image"
    mimetype: str = "image/jpeg"
    size: int | None = None
    filename: str | None = None
    voice_note: bool = False


async def test_incoming_media_is_stored_and_reported_with_a_signed_url(svc: MediaService) -> None:
    data = samples.jpeg()

    async def fetch() -> bytes:
        return data

    row = await incoming.download(svc, 3, Incoming(size=len(data)), fetch)
    assert row is not None and row.source == "incoming" and row.owner_id == 3
    out = incoming.report(svc, Incoming(voice_note=False, filename="x.jpg"), row)
    assert out["status"] == "stored" and out["sha256"] == hashlib.sha256(data).hexdigest()
    assert out["url"].startswith(f"{svc.settings.base_url}/media/{row.id}?exp=") and out["filename"] == "x.jpg"
    assert set(out) == {"id", "type", "mimetype", "size", "sha256", "url", "status", "filename"}


async def test_a_failed_or_slow_download_is_reported_failed(svc: MediaService) -> None:
    async def broken() -> bytes:
        raise RuntimeError("cdn said no")

    async def slow() -> bytes:
        await asyncio.Event().wait()
        return b""

    async def empty() -> bytes:
        return b""

    for fetch in (broken, slow, empty):
        assert await incoming.download(svc, 3, Incoming(), fetch) is None
    assert await incoming.download(svc, 3, Incoming(size=svc.max_bytes + 1), empty) is None
    out = incoming.report(svc, Incoming(type="audio", mimetype="audio/ogg", size=10, voice_note=True), None)
    assert out == {
        "id": None, "type": "audio", "mimetype": "audio/ogg", "size": 10, "sha256": None,
        "url": None, "status": "failed", "voiceNote": True,
    }  # fmt: skip
