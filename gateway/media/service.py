"""The media service: takes bytes in (upload, base64, URL, an incoming download), keeps them, hands
them out (owned per account, or through a signed link), prepares them for sending, prunes them.

One per gateway, built and started by the composition root (``Runtime.media``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterable, Callable
from pathlib import Path

import structlog

from gateway.media.convert import Converter
from gateway.media.errors import MediaError, invalid_media, too_large
from gateway.media.fetch import fetch_into
from gateway.media.mime import MediaType, detect, family, resolve_type
from gateway.media.prepare import PreparedMedia, Preparer
from gateway.media.signing import UrlSigner, load_secret
from gateway.media.storage import MediaFiles, Spool, StoredFile
from gateway.net import GuardedClient
from gateway.periodic import Periodic
from gateway.settings import Settings
from gateway.store import MediaRow, Store

log = structlog.get_logger("gateway.media")

PRUNE_EVERY_S = 600.0
SHARED_GRACE_S = 60.0  # on a shared MEDIA_DIR, a file stored this recently is not removed with a row (see _drop)
MAX_FILENAME = 255


def new_media_id() -> str:
    return "med_" + secrets.token_hex(12)


def clean_filename(name: str | None) -> str | None:
    """A display name only (never a path): the last path segment, control characters dropped."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:MAX_FILENAME] or None


def base64_size_bound(max_bytes: int) -> int:
    """Characters of base64 that can hold ``max_bytes`` (what a JSON body may carry on top)."""
    return (max_bytes + 2) // 3 * 4


class MediaService:
    def __init__(
        self, settings: Settings, store: Store, clock: Callable[[], float] = time.time, *, http: GuardedClient
    ) -> None:
        self.settings = settings
        self.store = store
        self.http = http  # URL fetches (owned by the composition root: not closed here)
        self.clock = clock
        self.max_bytes = settings.media_max_bytes
        # Several nodes share one MEDIA_DIR in a cluster: temporary files per node, removals by age.
        self.shared = settings.cluster
        self.files = MediaFiles(settings.media_root, settings.node_id if self.shared else None)
        self.converter = Converter(settings.media_convert_concurrency, settings.media_convert_timeout_s)
        self.preparer = Preparer(self.files, self.converter, self.max_bytes)
        self.signer = UrlSigner(b"", settings.base_url, settings.media_url_ttl_s)
        self._files_lock = asyncio.Lock()  # a file is never removed while a row for it is being added
        self._pruner: Periodic | None = None

    # --- lifecycle -------------------------------------------------------------

    async def start(self, prune_every_s: float | None = PRUNE_EVERY_S) -> None:
        await asyncio.to_thread(self.files.prepare)
        self.signer = UrlSigner(
            await asyncio.to_thread(load_secret, self.settings.media_root if self.shared else self.settings.data_dir),
            self.settings.base_url,
            self.settings.media_url_ttl_s,
        )
        if prune_every_s is not None:
            self._pruner = Periodic(self._prune_and_log, prune_every_s, name="media-prune")
            self._pruner.start()

    async def stop(self) -> None:
        if self._pruner is not None:
            await self._pruner.stop()

    # --- bytes in ----------------------------------------------------------------

    async def ingest_stream(
        self, owner: int | None, chunks: AsyncIterable[bytes], *, filename: str | None, source: str
    ) -> MediaRow:
        """Spool a stream (an upload body, a multipart part) to disk and record it."""
        with self.files.spool(self.max_bytes) as spool:
            async for chunk in chunks:
                spool.write(chunk)
            return await self._record(owner, spool, filename, source)

    async def ingest_spool(self, owner: int | None, spool: Spool, *, filename: str | None, source: str) -> MediaRow:
        """Record a spool the caller filled (a multipart parser writes into it directly)."""
        return await self._record(owner, spool, filename, source)

    async def ingest_base64(self, owner: int | None, data: str, *, filename: str | None) -> MediaRow:
        if len(data) > base64_size_bound(self.max_bytes) + 4:
            raise too_large(self.max_bytes)
        if data.startswith("data:") and "," in data[:200]:  # a data: URL: the payload after the comma
            data = data.split(",", 1)[1]
        try:
            raw = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid_media("'media.data' is not valid base64") from exc
        with self.files.spool(self.max_bytes) as spool:
            spool.write(raw)
            del raw
            return await self._record(owner, spool, filename, "data")

    async def fetch(self, spool: Spool, url: str) -> None:
        """Fetch ``url`` into ``spool`` with §11's limits (MEDIA_FETCH_TIMEOUT_MS, MEDIA_MAX_BYTES, hops)."""
        await fetch_into(
            spool,
            url,
            timeout_s=self.settings.media_fetch_timeout_ms / 1000,
            allow_private=self.settings.media_fetch_allow_private,
            client=self.http,
        )

    async def ingest_url(self, owner: int | None, url: str, *, filename: str | None) -> MediaRow:
        with self.files.spool(self.max_bytes) as spool:
            await self.fetch(spool, url)
            if filename is None:
                filename = clean_filename(url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])
            return await self._record(owner, spool, filename, "url")

    async def ingest_download(self, owner: int | None, data: bytes, *, filename: str | None) -> MediaRow:
        """Keep an incoming message's downloaded bytes."""
        with self.files.spool(self.max_bytes) as spool:
            spool.write(data)
            return await self._record(owner, spool, filename, "incoming")

    async def _record(self, owner: int | None, spool: Spool, filename: str | None, source: str) -> MediaRow:
        if spool.size == 0:
            raise invalid_media("the media is empty (0 bytes)")
        spool.close()
        mimetype = await detect(spool.path)
        now = self.clock()
        async with self._files_lock:
            stored = await asyncio.to_thread(self.files.commit, spool)
            row = MediaRow(
                id=new_media_id(),
                owner_id=owner,
                sha256=stored.sha256,
                mimetype=mimetype,
                size=stored.size,
                filename=clean_filename(filename),
                source=source,
                created_at=now,
                expires_at=now + self.settings.media_retention_hours * 3600,
            )
            await self.store.insert_media(row)
        return row

    # --- bytes out ---------------------------------------------------------------

    async def get(self, media_id: str, owner: int | None, is_admin: bool) -> MediaRow:
        """The row if it exists, has not expired and the caller may see it; else NOT_FOUND."""
        row = await self.store.get_media(media_id) if len(media_id) <= 64 else None
        if row is None or row.expires_at <= self.clock() or not (is_admin or row.owner_id == owner):
            raise MediaError("NOT_FOUND", f"no media {media_id}")
        return row

    async def get_signed(self, media_id: str, exp: str | None, sig: str | None) -> MediaRow | None:
        """The row when the link's signature and expiry hold; None when they do not (→ 403)."""
        if not self.signer.verify(media_id, exp, sig, self.clock()):
            return None
        row = await self.store.get_media(media_id)
        if row is None or row.expires_at <= self.clock():
            raise MediaError("NOT_FOUND", f"no media {media_id}")
        return row

    def path(self, row: MediaRow) -> Path:
        return self.files.path(row.sha256)

    def stored(self, row: MediaRow) -> StoredFile:
        return StoredFile(row.sha256, row.size, self.files.path(row.sha256))

    def signed_url(self, media_id: str) -> str:
        return self.signer.url(media_id, self.clock())

    async def delete(self, media_id: str, owner: int | None, is_admin: bool) -> None:
        await self.get(media_id, owner, is_admin)
        await self._drop(media_id)

    async def discard(self, media_id: str) -> None:
        """Drop media this gateway made for a send that then failed (no ownership check: ours)."""
        await self._drop(media_id)

    async def _drop(self, media_id: str) -> None:
        async with self._files_lock:
            row = await self.store.delete_media(media_id)
            if row is not None and not await self.store.media_sha_in_use(row.sha256):
                # The lock covers this process only: on a shared volume, a file stored again in the last
                # minute (by another node) stays, and the orphan sweep takes it if no row came of it.
                since = self.clock() - SHARED_GRACE_S if self.shared else None
                await asyncio.to_thread(self.files.remove, row.sha256, since)

    # --- sending -----------------------------------------------------------------

    async def prepare(
        self,
        row: MediaRow,
        requested_type: str | None,
        *,
        voice_note: bool = False,
        filename: str | None = None,
        caption: str | None = None,
    ) -> PreparedMedia:
        """What to send for ``row`` as ``requested_type`` (or its detected family). INVALID_MEDIA when
        the bytes cannot be that type or a conversion fails."""
        kind: MediaType = resolve_type(requested_type, row.mimetype)
        if voice_note and kind != "audio":
            raise invalid_media(f"'voiceNote' needs audio, not {row.mimetype}")
        path = self.files.path(row.sha256)
        if not path.exists():
            raise invalid_media(f"the media {row.id} is no longer stored")
        return await self.preparer.prepare(
            self.stored(row),
            row.mimetype,
            kind,
            voice_note=voice_note,
            filename=clean_filename(filename) or row.filename,
            caption=caption,
        )

    @staticmethod
    def family(mimetype: str) -> MediaType:
        return family(mimetype)

    # --- pruning -----------------------------------------------------------------

    async def prune(self) -> int:
        """Drop expired media, then the oldest until the total is within MEDIA_MAX_TOTAL_MB;
        then files no row names (conversions, leftovers) older than the retention. Returns rows dropped."""
        dropped = 0
        while expired := await self.store.expired_media(self.clock()):
            for row in expired:
                await self._drop(row.id)
                dropped += 1
        cap = self.settings.media_max_total_mb * 1024 * 1024
        while await self.store.media_total_bytes() > cap:
            oldest = await self.store.oldest_media(limit=20)
            if not oldest:
                break
            for row in oldest:
                await self._drop(row.id)
                dropped += 1
                if await self.store.media_total_bytes() <= cap:
                    break
        await self.store.prune_pending_media(self.clock() - self.settings.media_retention_hours * 3600)
        await self._sweep_orphans()
        return dropped

    async def _sweep_orphans(self) -> None:
        horizon = self.clock() - self.settings.media_retention_hours * 3600
        candidates = await asyncio.to_thread(_old_files, self.files.root, horizon)
        for sha in candidates:
            async with self._files_lock:
                if not await self.store.media_sha_in_use(sha):
                    await asyncio.to_thread(self.files.remove, sha, horizon)  # unless stored again meanwhile

    async def _prune_and_log(self) -> None:
        dropped = await self.prune()
        if dropped:
            log.info("media.pruned", rows=dropped)


def _old_files(root: Path, before: float) -> list[str]:
    out: list[str] = []
    for sub in os.scandir(root):
        if not sub.is_dir() or len(sub.name) != 2:
            continue
        for entry in os.scandir(sub.path):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < before:
                    out.append(entry.name)
    return out
