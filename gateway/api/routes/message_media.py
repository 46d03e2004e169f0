"""The media half of ``POST /messages`` (CONTRACT §11): JSON ``media`` (url, data or id) or a
``multipart/form-data`` body with a ``file`` part.

Checks run in the contract's order — the body, MISSING_TOKEN, INVALID_PHONE, INVALID_MESSAGE,
then the media codes (INVALID_MEDIA, MEDIA_TOO_LARGE, MEDIA_FETCH_FAILED), then DEVICE_NOT_FOUND —
and the driver gets a local, converted file through the seam (``OutgoingMedia``), never a URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.api import forwarding
from gateway.api.envelope import ok
from gateway.api.errors import ApiError, invalid
from gateway.api.message_content import message_id
from gateway.api.models.base import MAX_TEXT
from gateway.api.models.media import MediaIn
from gateway.api.models.responses import MessageSent
from gateway.api.routes.common import principal, raw_header, token_from, visible_device
from gateway.api.routes.history import service
from gateway.api.routes.media import api_error, media_service
from gateway.api.uploads import read_multipart
from gateway.auth import Principal
from gateway.drivers.base import OutgoingMessage
from gateway.idempotency import check_key, fingerprint
from gateway.media import outgoing
from gateway.media.errors import MediaError
from gateway.media.outgoing import MediaSpec, seam_media
from gateway.media.service import MediaService
from gateway.media.storage import Spool
from gateway.phones import InvalidPhone, to_jid
from gateway.runtime import runtime
from gateway.store import MediaRow
from gateway.timestamps import iso

MULTIPART_FIELDS = ("token", "to", "type", "caption", "filename", "voiceNote", "replyTo", "mentions")
MAX_MENTIONS = 256


def spec_of(media: MediaIn) -> MediaSpec:
    """The decoded ``media`` object; INVALID_MESSAGE for a caption over the text limit."""
    if media.caption is not None and len(media.caption) > MAX_TEXT:
        raise ApiError("INVALID_MESSAGE", "'media.caption' must be at most 65,536 characters")
    return MediaSpec(
        type=media.type,
        url=media.url,
        data=media.data,
        id=media.id,
        mimetype=media.mimetype,
        filename=media.filename,
        caption=media.caption or None,
        voice_note=bool(media.voice_note),
    )


def mention_jids(request: Request, mentions: list[str] | None) -> tuple[str, ...]:
    """Phone numbers (or user JIDs) → JIDs; INVALID_PHONE names the bad one."""
    if not mentions:
        return ()
    if len(mentions) > MAX_MENTIONS:
        raise ApiError("INVALID_MESSAGE", f"'mentions' may hold at most {MAX_MENTIONS} numbers")
    cc = runtime(request).settings.default_country_code
    out = []
    for m in mentions:
        try:
            out.append(to_jid(m, cc))
        except InvalidPhone as exc:
            raise ApiError("INVALID_PHONE", f"'mentions': {exc}") from exc
    return tuple(dict.fromkeys(out))


def spec_fingerprint(spec: MediaSpec, sha256: str | None = None) -> dict[str, Any]:
    """What makes two media sends "the same" for an Idempotency-Key (base64 data by its hash)."""
    data_hash = hashlib.sha256(spec.data.encode()).hexdigest() if spec.data is not None else None
    return {
        "type": spec.type,
        "url": spec.url,
        "data": data_hash,
        "id": spec.id,
        "file": sha256,
        "filename": spec.filename,
        "caption": spec.caption,
        "voiceNote": spec.voice_note,
    }


async def respond(
    request: Request, key: str | None, print_: Any, action: Callable[[], Awaitable[MessageSent]]
) -> Response:
    if key is None:
        return ok(await action(), "message sent")
    rt = runtime(request)
    data, replayed = await rt.idempotency.run(principal(request).rate_key, key, fingerprint(*print_), action)
    response = ok(data, "message already sent (idempotent replay)" if replayed else "message sent")
    response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    return response


async def _send(
    request: Request,
    token: str,
    to: str,
    spec: MediaSpec,
    mentions: tuple[str, ...],
    row: MediaRow | None,
    reply_to: str | None = None,
) -> MessageSent:
    """Prepare (fetch/decode/convert) → device → send. Media errors come before DEVICE_NOT_FOUND."""
    svc = media_service(request)
    p = principal(request)
    try:
        row, prepared = await outgoing.prepare(svc, spec, p.account_id, p.is_admin, row)
    except MediaError as exc:
        raise api_error(exc) from exc
    device = visible_device(request, token)
    # A quoted id this device never stored is NOT_FOUND, before anything is sent.
    quoted = await service(request).quoted(token, reply_to) if reply_to else None
    sent = await device.send(to, OutgoingMessage(media=seam_media(prepared), mentions=mentions, reply_to=quoted))
    return {"messageId": sent.id, "timestamp": iso(sent.timestamp)}


async def send_json(
    request: Request, token: str, to: str, media: MediaIn, mentions: list[str] | None, reply_to: str | None = None
) -> Response:
    """``media`` on a JSON ``POST /messages`` (token, to and the one-content rule already checked)."""
    key = check_key(raw_header(request, b"idempotency-key"))
    jids = mention_jids(request, mentions)
    quote = message_id(reply_to, "replyTo") if reply_to is not None else None
    spec = spec_of(media)
    print_ = (token, to, "media", spec_fingerprint(spec), jids, quote)
    return await respond(request, key, print_, lambda: _send(request, token, to, spec, jids, None, quote))


def _flag(value: str | None, name: str) -> bool:
    if value is None or value == "":
        return False
    low = value.lower()
    if low in ("true", "1", "on", "yes"):
        return True
    if low in ("false", "0", "off", "no"):
        return False
    raise invalid(f"'{name}' must be true or false")


async def send_multipart(request: Request, recipient: Callable[[Any, Request], str]) -> Response:
    """``multipart/form-data``: fields ``token``, ``to``, ``type``, ``caption``, ``filename``,
    ``voiceNote``, ``mentions`` (comma list) and one ``file`` part, spooled to disk as it arrives.

    In a cluster, for a device on another node, the file is stored here as an upload (the media store is
    shared) and the call goes to the device's node without its file part (gateway.api.forwarding
    ``forward_upload``), where this route runs again with the upload in place of the part."""
    svc = media_service(request)
    key = check_key(raw_header(request, b"idempotency-key"))
    p = principal(request)
    forwarded = forwarding.forwarded_upload(request.scope)
    with svc.files.spool(svc.max_bytes) as spool:
        try:
            form = await read_multipart(request, spool)
        except MediaError as exc:
            raise api_error(exc) from exc
        f = form.fields
        if "text" in f or "media" in f:
            raise ApiError("INVALID_MESSAGE", "a multipart message carries its content as the 'file' part only")
        token = token_from(f.get("token"), request)
        to = recipient(f.get("to"), request)
        mentions = [m.strip() for m in f.get("mentions", "").split(",") if m.strip()]
        jids = mention_jids(request, mentions)
        quote = message_id(f["replyTo"], "replyTo") if f.get("replyTo") else None
        caption = f.get("caption") or None
        if caption is not None and len(caption) > MAX_TEXT:
            raise ApiError("INVALID_MESSAGE", "'caption' must be at most 65,536 characters")
        kind = f.get("type") or None
        spec = MediaSpec(
            type=kind,
            filename=f.get("filename") or form.filename,
            caption=caption,
            voice_note=_flag(f.get("voiceNote"), "voiceNote"),
        )
        row: MediaRow | None = None  # stored before the send runs: a forwarded one's, or one this node forwards
        if forwarded is not None:
            row = await _forwarded_row(request, forwarded)
        elif not form.has_file:
            raise ApiError("INVALID_MEDIA", "the multipart body has no 'file' part")
        print_ = (token, to, "media", spec_fingerprint(spec, row.sha256 if row else spool.sha256), jids, quote)
        rt = runtime(request)
        used = False  # whether the stored file went to a send (or to the node that runs it)

        async def action() -> MessageSent:
            nonlocal used
            used = True
            stored = row if row is not None else await _store(svc, p, spool, spec)
            return await _send(request, token, to, spec, jids, stored, quote)

        try:
            if forwarding.elsewhere(rt, token):
                if forwarded is not None:  # the device left this node meanwhile: never forwarded twice
                    raise forwarding.moving(rt, token)
                row = await _store(svc, p, spool, spec)
                fields = {k: v for k, v in f.items() if k in MULTIPART_FIELDS}
                if spec.filename:
                    fields["filename"] = spec.filename  # the file part's own name, when no field names it
                try:
                    answer = await forwarding.forward_upload(rt, request.scope, token, fields, row.id)
                except ApiError as exc:
                    used = not forwarding.undelivered(exc)  # a call the owner may be running keeps its file
                    raise
                if answer is not None:
                    used = True  # the owner's now: it sends it, or drops it as this node would
                    return forwarding.as_response(answer)
                # No node has the device: answered here, as on one node (the file stored already).
            return await respond(request, key, print_, action)
        finally:
            if row is not None and not used:
                await svc.discard(row.id)  # stored for a send that never ran (a replay, no owner): dropped


async def _store(svc: MediaService, p: Principal, spool: Spool, spec: MediaSpec) -> MediaRow:
    try:
        return await svc.ingest_spool(p.account_id, spool, filename=spec.filename, source="upload")
    except MediaError as exc:
        raise api_error(exc) from exc


async def _forwarded_row(request: Request, media_id: str) -> MediaRow:
    """The upload a forwarded send's file part became, under the caller's account as any upload id."""
    p = principal(request)
    try:
        return await media_service(request).get(media_id, p.account_id, p.is_admin)
    except MediaError as exc:
        raise ApiError("INVALID_MEDIA", f"no upload {media_id!r} (unknown, expired or another account's)") from exc
