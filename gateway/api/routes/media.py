"""``POST /media``, ``GET /media/{id}``, ``DELETE /media/{id}`` (CONTRACT §11 "Uploads").

Uploads are multipart (a ``file`` part) or a raw body (its Content-Type, ``?filename=``),
spooled to disk as they arrive. Media belongs to the caller's account: another
account's id is NOT_FOUND. ``GET`` also answers a signed link (``?exp=…&sig=…``, as
given in ``media.url`` of events) without an API key; a bad or expired signature is 403.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import ApiError, invalid
from gateway.api.models.responses import MediaDeleted, MediaStored
from gateway.api.routes.common import path_token, principal, visible_device
from gateway.api.uploads import is_multipart, read_multipart, read_raw
from gateway.drivers.base import MediaRef
from gateway.media import incoming
from gateway.media.errors import MediaError
from gateway.media.service import MediaService
from gateway.runtime import runtime
from gateway.store import MediaRow

# Media is whatever a sender sent, served from the gateway's own origin: an HTML or SVG file opened there
# would run its script with the console's session cookie. So only what a browser shows passively (raster
# images, audio, video) is ``inline``; anything else is an ``attachment`` (downloaded, never rendered), and
# every answer carries a CSP that forbids script and sandboxes the document in an opaque origin. The CSP of
# a subresource does not apply where it is embedded: the console's <img>/<audio>/<video> still show it.
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
MEDIA_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"


def disposition(row: MediaRow) -> str:
    """``inline`` for media a browser shows passively, else ``attachment``; with the file name."""
    passive = row.mimetype in INLINE_IMAGES or row.mimetype.split("/", 1)[0] in ("audio", "video")
    value = "inline" if passive else "attachment"
    if row.filename:
        value += f"; filename*=UTF-8''{quote(row.filename, safe='')}"
    return value


def media_service(request: Request) -> MediaService:
    svc: MediaService = runtime(request).media
    return svc


def api_error(exc: MediaError) -> ApiError:
    return ApiError(exc.code, exc.message)


def iso_seconds(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def describe(row: MediaRow) -> MediaStored:
    return MediaStored(
        id=row.id,
        mimetype=row.mimetype,
        size=row.size,
        sha256=row.sha256,
        filename=row.filename,
        expires_at=iso_seconds(row.expires_at),
    )


async def upload(request: Request) -> Response:
    svc = media_service(request)
    owner = principal(request).account_id
    try:
        with svc.files.spool(svc.max_bytes) as spool:
            if is_multipart(request):
                form = await read_multipart(request, spool)
                if not form.has_file:
                    raise ApiError("INVALID_MEDIA", "the multipart body has no 'file' part")
                filename = form.filename or form.fields.get("filename")
            else:
                await read_raw(request, spool)
                filename = request.query_params.get("filename")
            row = await svc.ingest_spool(owner, spool, filename=filename, source="upload")
    except MediaError as exc:
        raise api_error(exc) from exc
    return ok(describe(row), "media stored")


async def fetch(request: Request) -> Response:
    svc = media_service(request)
    media_id: str = request.path_params["id"]
    query = request.query_params
    try:
        if "sig" in query or "exp" in query:
            row = await svc.get_signed(media_id, query.get("exp"), query.get("sig"))
            if row is None:
                raise ApiError("FORBIDDEN", "the media link's signature is invalid or has expired")
        else:
            p = principal(request)
            row = await svc.get(media_id, p.account_id, p.is_admin)
    except MediaError as exc:
        raise api_error(exc) from exc
    return FileResponse(
        svc.path(row),
        media_type=row.mimetype,
        headers={
            "Content-Disposition": disposition(row),
            "Content-Security-Policy": MEDIA_CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
        },
    )


async def delete(request: Request) -> Response:
    svc = media_service(request)
    media_id: str = request.path_params["id"]
    p = principal(request)
    try:
        await svc.delete(media_id, p.account_id, p.is_admin)
    except MediaError as exc:
        raise api_error(exc) from exc
    return ok(MediaDeleted(id=media_id, deleted=True), "media deleted")


async def retry_download(request: Request) -> Response:
    """``POST /devices/{token}/messages/{id}/media``: download again an incoming message's media whose
    download failed (or was not made: MEDIA_AUTO_DOWNLOAD=false). Answers the new ``media`` object."""
    token = path_token(request)
    device = visible_device(request, token)
    message_id: str = request.path_params["id"]
    if not message_id or len(message_id) > 128:
        raise invalid("'id' must be a message id")
    svc = media_service(request)
    driver = device.driver

    async def fetch(ref: MediaRef) -> bytes:
        return await driver.download(ref)

    media = await incoming.retry(svc, token, message_id, fetch)
    if media is None:
        raise ApiError("NOT_FOUND", f"no media waiting for a download on message {message_id}")
    if media["status"] != "stored":
        raise ApiError("MEDIA_FETCH_FAILED", "the media could not be downloaded from WhatsApp; try again later")
    await runtime(request).messages.media_downloaded(token, message_id, media)
    return ok(media, "media downloaded")


routes = [
    Route("/media", upload, methods=["POST"]),
    Route("/media/{id}", fetch, methods=["GET"]),
    Route("/media/{id}", delete, methods=["DELETE"]),
    Route("/devices/{token}/messages/{id}/media", retry_download, methods=["POST"]),
]
