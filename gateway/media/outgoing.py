"""Media on ``POST /messages``: one source (url, base64 data, upload id, or a multipart file) →
prepared media, a local file converted for its type (a driver never sees a URL).

The errors are §11's: INVALID_MEDIA (no source or two, bad base64, empty, a type the bytes are
not, conversion failed, an unknown or expired upload id), MEDIA_TOO_LARGE, MEDIA_FETCH_FAILED.
Media the gateway fetched or decoded for a send that then fails is dropped again, so a failed
send leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.drivers.base import OutgoingMedia
from gateway.media.errors import MediaError, invalid_media
from gateway.media.prepare import PreparedMedia
from gateway.media.service import MediaService
from gateway.store import MediaRow


@dataclass(frozen=True, slots=True)
class MediaSpec:
    """The ``media`` object of a send, after JSON decoding (types checked, values not yet)."""

    type: str | None = None
    url: str | None = None
    data: str | None = None
    id: str | None = None
    mimetype: str | None = None  # a hint only: the bytes decide
    filename: str | None = None
    caption: str | None = None
    voice_note: bool = False


def one_source(spec: MediaSpec) -> str:
    sources = [name for name in ("url", "data", "id") if getattr(spec, name) is not None]
    if len(sources) != 1:
        if not sources:
            raise invalid_media("'media' needs exactly one source: 'url', 'data' or 'id'")
        raise invalid_media(f"'media' has exactly one source, not {' and '.join(repr(s) for s in sources)}")
    return sources[0]


async def source_row(svc: MediaService, spec: MediaSpec, owner: int | None, is_admin: bool) -> tuple[MediaRow, bool]:
    """The stored media to send, and whether this send created it (so a failure can drop it)."""
    source = one_source(spec)
    if source == "id":
        assert spec.id is not None
        try:
            return await svc.get(spec.id, owner, is_admin), False
        except MediaError as exc:
            raise invalid_media(f"no upload {spec.id!r} (unknown, expired or another account's)") from exc
    if source == "data":
        assert spec.data is not None
        return await svc.ingest_base64(owner, spec.data, filename=spec.filename), True
    assert spec.url is not None
    return await svc.ingest_url(owner, spec.url, filename=spec.filename), True


async def prepare(
    svc: MediaService, spec: MediaSpec, owner: int | None, is_admin: bool, row: MediaRow | None = None
) -> tuple[MediaRow, PreparedMedia]:
    """Resolve ``spec`` (or use ``row``, e.g. a multipart file just stored) and prepare it for sending."""
    created = row is not None
    if row is None:
        row, created = await source_row(svc, spec, owner, is_admin)
    try:
        prepared = await svc.prepare(
            row, spec.type, voice_note=spec.voice_note, filename=spec.filename, caption=spec.caption
        )
    except BaseException:
        if created:
            await svc.discard(row.id)
        raise
    return row, prepared


def seam_media(p: PreparedMedia) -> OutgoingMedia:
    return OutgoingMedia(
        type=p.type,
        path=p.path,
        mimetype=p.mimetype,
        size=p.size,
        sha256=p.sha256,
        filename=p.filename,
        caption=p.caption,
        voice_note=p.voice_note,
        thumbnail=p.thumbnail,
        duration_s=p.duration_s,
        width=p.width,
        height=p.height,
    )
