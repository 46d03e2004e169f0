"""The ``media`` table: one row per upload or downloaded incoming file.

Rows name their bytes by sha256; the files themselves live under
``$DATA_DIR/media/`` (gateway.media.storage). Several rows may share one file,
so a file is removed only when no row names its hash any more.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.db import Db

_COLUMNS = "id, owner_id, sha256, mimetype, size, filename, source, created_at, expires_at"


@dataclass(frozen=True, slots=True)
class MediaRow:
    id: str
    owner_id: int | None
    sha256: str
    mimetype: str
    size: int
    filename: str | None
    source: str  # upload | incoming | url | data (what the bytes came from)
    created_at: float  # unix seconds
    expires_at: float


def _row(r: tuple[object, ...]) -> MediaRow:
    return MediaRow(
        str(r[0]),
        None if r[1] is None else int(r[1]),  # type: ignore[call-overload]
        str(r[2]),
        str(r[3]),
        int(r[4]),  # type: ignore[call-overload]
        None if r[5] is None else str(r[5]),
        str(r[6]),
        float(r[7]),  # type: ignore[arg-type]
        float(r[8]),  # type: ignore[arg-type]
    )


class MediaQueries:
    db: Db

    async def insert_media(self, row: MediaRow) -> None:
        await self.db.execute(
            f"INSERT INTO media ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.owner_id,
                row.sha256,
                row.mimetype,
                row.size,
                row.filename,
                row.source,
                row.created_at,
                row.expires_at,
            ),
        )

    async def get_media(self, media_id: str) -> MediaRow | None:
        row = await self.db.fetchone(f"SELECT {_COLUMNS} FROM media WHERE id = ?", (media_id,))
        return _row(tuple(row)) if row else None

    async def delete_media(self, media_id: str) -> MediaRow | None:
        """Remove one row; returns it (so the caller can drop an orphaned file)."""
        async with self.db.transaction():
            row = await self.get_media(media_id)
            if row is not None:
                await self.db.execute("DELETE FROM media WHERE id = ?", (media_id,))
        return row

    async def media_sha_in_use(self, sha256: str) -> bool:
        return await self.db.fetchone("SELECT 1 FROM media WHERE sha256 = ? LIMIT 1", (sha256,)) is not None

    async def expired_media(self, now: float, limit: int = 500) -> list[MediaRow]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM media WHERE expires_at <= ? ORDER BY expires_at LIMIT ?", (now, limit)
        )
        return [_row(tuple(r)) for r in rows]

    async def media_total_bytes(self) -> int:
        """Bytes on disk: each distinct file once, however many rows share it."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(size), 0) FROM (SELECT sha256, MAX(size) AS size FROM media GROUP BY sha256) AS files"
        )
        return int(row[0]) if row else 0

    async def oldest_media(self, limit: int = 500) -> list[MediaRow]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM media ORDER BY created_at LIMIT ?", (limit,))
        return [_row(tuple(r)) for r in rows]


@dataclass(frozen=True, slots=True)
class PendingMedia:
    """Incoming media not downloaded yet (failed, or MEDIA_AUTO_DOWNLOAD off): what a retry needs."""

    token: str
    message_id: str
    owner_id: int | None
    type: str
    mimetype: str
    size: int | None
    filename: str | None
    voice_note: bool
    ref_driver: str
    ref_data: str
    created_at: float


_PENDING = "token, message_id, owner_id, type, mimetype, size, filename, voice_note, ref_driver, ref_data, created_at"


class PendingMediaQueries:
    db: Db

    async def save_pending_media(self, p: PendingMedia) -> None:
        await self.db.execute(
            f"INSERT OR REPLACE INTO media_pending ({_PENDING}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                p.token,
                p.message_id,
                p.owner_id,
                p.type,
                p.mimetype,
                p.size,
                p.filename,
                int(p.voice_note),
                p.ref_driver,
                p.ref_data,
                p.created_at,
            ),
        )

    async def pending_media(self, token: str, message_id: str) -> PendingMedia | None:
        row = await self.db.fetchone(
            f"SELECT {_PENDING} FROM media_pending WHERE token = ? AND message_id = ?", (token, message_id)
        )
        if row is None:
            return None
        r = tuple(row)
        return PendingMedia(
            str(r[0]),
            str(r[1]),
            None if r[2] is None else int(r[2]),
            str(r[3]),
            str(r[4]),
            None if r[5] is None else int(r[5]),
            None if r[6] is None else str(r[6]),
            bool(r[7]),
            str(r[8]),
            str(r[9]),
            float(r[10]),
        )

    async def drop_pending_media(self, token: str, message_id: str) -> None:
        await self.db.execute("DELETE FROM media_pending WHERE token = ? AND message_id = ?", (token, message_id))

    async def prune_pending_media(self, before: float) -> int:
        return await self.db.execute("DELETE FROM media_pending WHERE created_at < ?", (before,))
