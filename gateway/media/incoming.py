"""Incoming media: downloaded through the driver before the message is recorded, stored, and
reported as §11's ``media`` object — ``{id, type, mimetype, size, sha256, filename?, voiceNote?,
url, status}`` with ``url`` a signed, expiring link.

A download that fails (WhatsApp's CDN unreachable, too large, too slow) never holds the message
back: it is reported with ``status: "failed"``, ``url: null``, and can be retried later with the
driver's reference (``POST /devices/{token}/messages/{id}/media``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from gateway.drivers.base import IncomingMedia, MediaRef
from gateway.media.errors import MediaError
from gateway.media.service import MediaService
from gateway.store import MediaRow, PendingMedia

log = structlog.get_logger("gateway.media")


class IncomingMediaLike(Protocol):
    """What the seam's ``IncomingMedia`` says about the file before it is downloaded."""

    @property
    def type(self) -> str: ...
    @property
    def mimetype(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def filename(self) -> str | None: ...
    @property
    def voice_note(self) -> bool: ...


def report(svc: MediaService | None, media: IncomingMediaLike, row: MediaRow | None) -> dict[str, Any]:
    """The event's ``media`` object (stored or failed)."""
    out: dict[str, Any] = {
        "id": row.id if row else None,
        "type": media.type,
        "mimetype": row.mimetype if row else media.mimetype,
        "size": row.size if row else media.size,
        "sha256": row.sha256 if row else None,
        "url": svc.signed_url(row.id) if row and svc else None,
        "status": "stored" if row else "failed",
    }
    filename = (row.filename if row else None) or media.filename
    if filename:
        out["filename"] = filename
    if media.voice_note:
        out["voiceNote"] = True
    return out


async def download(
    svc: MediaService,
    owner: int | None,
    media: IncomingMediaLike,
    fetch: Callable[[], Awaitable[bytes]],
) -> MediaRow | None:
    """Download with the driver (bounded by MEDIA_FETCH_TIMEOUT_MS and MEDIA_MAX_BYTES) and store.

    None when it fails; the reason is logged, the message still goes out.
    """
    if media.size is not None and media.size > svc.max_bytes:
        log.warning("media.download_skipped", reason="over MEDIA_MAX_BYTES", size=media.size)
        return None
    try:
        async with asyncio.timeout(svc.settings.media_fetch_timeout_ms / 1000):
            data = await fetch()
        return await svc.ingest_download(owner, data, filename=media.filename)
    except (TimeoutError, MediaError) as exc:
        log.warning("media.download_failed", reason=str(exc) or type(exc).__name__)
    except Exception as exc:  # a driver failure of any kind: the message is still delivered
        log.warning("media.download_failed", reason=f"{type(exc).__name__}: {exc}")
    return None


async def remember(svc: MediaService, token: str, message_id: str, owner: int | None, media: IncomingMedia) -> None:
    """Keep the driver's reference of media not downloaded, for a retry (pruned with the media)."""
    await svc.store.save_pending_media(
        PendingMedia(
            token=token,
            message_id=message_id,
            owner_id=owner,
            type=media.type,
            mimetype=media.mimetype,
            size=media.size,
            filename=media.filename,
            voice_note=media.voice_note,
            ref_driver=media.ref.driver,
            ref_data=media.ref.data,
            created_at=svc.clock(),
        )
    )


async def retry(
    svc: MediaService, token: str, message_id: str, fetch: Callable[[MediaRef], Awaitable[bytes]]
) -> dict[str, Any] | None:
    """Download again the media of a message whose download failed: its new ``media`` object
    (``status`` stored or failed), or None when no such media waits for a download."""
    pending = await svc.store.pending_media(token, message_id)
    if pending is None:
        return None
    media = IncomingMedia(
        type=pending.type,  # type: ignore[arg-type]
        mimetype=pending.mimetype,
        size=pending.size,
        ref=MediaRef(pending.ref_driver, pending.ref_data),
        filename=pending.filename,
        voice_note=pending.voice_note,
    )
    row = await download(svc, pending.owner_id, media, lambda: fetch(media.ref))
    if row is not None:
        await svc.store.drop_pending_media(token, message_id)
    return report(svc, media, row)
