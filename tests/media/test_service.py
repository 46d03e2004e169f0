"""The media service over a real store: ingest, ownership, expiry, pruning by age and by total size."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.media.errors import MediaError
from gateway.media.service import MediaService, clean_filename
from gateway.net import GuardedClient
from gateway.settings import Settings
from gateway.store import Store
from tests.media import samples
from tests.support.settings import make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[MediaService, Clock]]:
    settings: Settings = replace(make_settings(tmp_path), media_retention_hours=1, media_max_total_mb=1)
    store = await Store.open(tmp_path)
    clock = Clock()
    http = GuardedClient()
    svc = MediaService(settings, store, clock, http=http)
    await svc.start(prune_every_s=None)
    yield svc, clock
    await svc.stop()
    await http.close()
    await store.close()


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_an_upload_is_recorded_with_what_its_bytes_are(service: tuple[MediaService, Clock]) -> None:
    svc, clock = service
    data = samples.png()
    row = await svc.ingest_stream(7, chunks(data), filename="../../etc/a.png", source="upload")
    assert row.id.startswith("med_") and row.owner_id == 7 and row.mimetype == "image/png"
    assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size == len(data)
    assert row.filename == "a.png" and row.expires_at == clock.now + 3600
    assert svc.path(row).read_bytes() == data


async def test_another_account_gets_not_found(service: tuple[MediaService, Clock]) -> None:
    svc, _ = service
    row = await svc.ingest_stream(7, chunks(samples.PDF), filename=None, source="upload")
    assert (await svc.get(row.id, 7, False)).id == row.id
    assert (await svc.get(row.id, None, True)).id == row.id  # the admin sees all
    for owner in (8, None):
        with pytest.raises(MediaError) as err:
            await svc.get(row.id, owner, False)
        assert err.value.code == "NOT_FOUND"


async def test_base64_empty_and_garbage(service: tuple[MediaService, Clock]) -> None:
    svc, _ = service
    row = await svc.ingest_base64(1, base64.b64encode(samples.PDF).decode(), filename="x.pdf")
    assert row.mimetype == "application/pdf" and row.source == "data"
    row = await svc.ingest_base64(1, "data:image/png;base64," + base64.b64encode(samples.png()).decode(), filename=None)
    assert row.mimetype == "image/png"
    for bad, reason in [("not base64!!", "not valid base64"), ("", "empty")]:
        with pytest.raises(MediaError, match=reason) as err:
            await svc.ingest_base64(1, bad, filename=None)
        assert err.value.code == "INVALID_MEDIA"
    svc.max_bytes = 10
    with pytest.raises(MediaError) as err:
        await svc.ingest_base64(1, base64.b64encode(b"x" * 100).decode(), filename=None)
    assert err.value.code == "MEDIA_TOO_LARGE"
    assert list(svc.files.tmp.iterdir()) == []


async def test_delete_keeps_a_file_another_row_still_names(service: tuple[MediaService, Clock]) -> None:
    svc, _ = service
    a = await svc.ingest_stream(1, chunks(samples.PDF), filename=None, source="upload")
    b = await svc.ingest_stream(2, chunks(samples.PDF), filename=None, source="upload")
    await svc.delete(a.id, 1, False)
    assert svc.path(b).exists()
    await svc.delete(b.id, 2, False)
    assert not svc.path(b).exists()
    with pytest.raises(MediaError):
        await svc.get(b.id, 2, False)


async def test_expired_media_is_gone_and_pruned(service: tuple[MediaService, Clock]) -> None:
    svc, clock = service
    row = await svc.ingest_stream(1, chunks(samples.PDF), filename=None, source="upload")
    clock.now += 3601
    with pytest.raises(MediaError):
        await svc.get(row.id, 1, False)
    assert await svc.prune() == 1
    assert not svc.path(row).exists() and await svc.store.get_media(row.id) is None


async def test_the_total_is_capped_oldest_first(service: tuple[MediaService, Clock]) -> None:
    svc, clock = service  # MEDIA_MAX_TOTAL_MB=1
    rows = []
    for i in range(4):
        clock.now += 1
        rows.append(await svc.ingest_stream(1, chunks(bytes([i]) * 400_000), filename=None, source="upload"))
    assert await svc.prune() == 2
    assert [await svc.store.get_media(r.id) is not None for r in rows] == [False, False, True, True]
    assert await svc.store.media_total_bytes() <= 1024 * 1024


async def test_signed_url_round_trip(service: tuple[MediaService, Clock]) -> None:
    svc, clock = service
    row = await svc.ingest_stream(1, chunks(samples.PDF), filename=None, source="incoming")
    url = svc.signed_url(row.id)
    exp, sig = url.split("?exp=")[1].split("&sig=")
    assert (await svc.get_signed(row.id, exp, sig)) == row
    assert await svc.get_signed(row.id, exp, sig + "x") is None
    clock.now += svc.settings.media_url_ttl_s + 1
    assert await svc.get_signed(row.id, exp, sig) is None


def test_clean_filename() -> None:
    assert clean_filename("C:\\Users\\me\\inv\x00oice.pdf") == "invoice.pdf"
    assert clean_filename("") is None and clean_filename("a/") is None
