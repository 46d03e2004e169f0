"""``POST /messages``: send a text (or media: gateway.api.routes.message_media) from a device, optionally idempotent."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import ApiError
from gateway.api.gate import MAX_BODY
from gateway.api.message_content import one_content
from gateway.api.message_draft import Draft, plain
from gateway.api.models.base import MAX_TEXT
from gateway.api.models.decode import read
from gateway.api.models.requests import SendMessage
from gateway.api.models.responses import MessageSent
from gateway.api.routes import message_media
from gateway.api.routes.common import principal, raw_header, token_from, visible_device
from gateway.api.routes.history import service
from gateway.api.uploads import is_multipart
from gateway.idempotency import check_key, fingerprint
from gateway.phones import InvalidPhone, to_jid
from gateway.runtime import runtime
from gateway.timestamps import iso


def recipient(value: Any, request: Request) -> str:
    """``to`` as a JID: phone digits (§3 rules) or a user / group JID. INVALID_PHONE otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError("INVALID_PHONE", "'to' must be a phone number or a WhatsApp JID")
    try:
        return to_jid(value, runtime(request).settings.default_country_code)
    except InvalidPhone as exc:
        raise ApiError("INVALID_PHONE", f"'to': {exc}") from exc


def message_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ApiError("INVALID_MESSAGE", "'text' must be 1 to 65,536 characters, not only whitespace")
    return value


async def deliver(request: Request, token: str, to: str, text: str) -> MessageSent:
    sent = await visible_device(request, token).send_text(to, text)
    return {"messageId": sent.id, "timestamp": iso(sent.timestamp)}


async def deliver_kind(request: Request, token: str, to: str, draft: Draft) -> MessageSent:
    """Any other kind: a quoted or reacted-to id must be stored for this device (404 before anything is sent)."""
    device = visible_device(request, token)
    chat, message = await draft.resolve(service(request), token)
    sent = await device.send(chat or to, message)
    return {"messageId": sent.id, "timestamp": iso(sent.timestamp)}


async def send(request: Request) -> Response:
    if is_multipart(request):
        return await message_media.send_multipart(request, recipient)
    # The gate lets POST /messages bodies grow to MEDIA_MAX_BYTES of base64 (media.data); JSON that
    # carries no media keeps the 1 MiB limit every other body has.
    raw = await request.body()
    if len(raw) > MAX_BODY and b'"media"' not in raw:
        raise ApiError("PAYLOAD_TOO_LARGE", "request body is over 1 MiB")
    body = await read(request, SendMessage)
    key = check_key(raw_header(request, b"idempotency-key"))
    token = token_from(body.token, request)
    to = recipient(body.to, request)
    if body.media is not None:
        one_content(body)  # media and another content together: INVALID_MESSAGE
        return await message_media.send_json(request, token, to, body.media, body.mentions, body.reply_to)
    if body.text is not None and plain(body):
        text = message_text(body.text)
        meaning: tuple[Any, ...] = (token, to, text)
        action = partial(deliver, request, token, to, text)
    else:
        draft = Draft.parse(body, message_media.mention_jids(request, body.mentions))
        meaning = (token, to, draft.fingerprint)
        action = partial(deliver_kind, request, token, to, draft)

    if key is None:
        return ok(await action(), "message sent")
    rt = runtime(request)
    data, replayed = await rt.idempotency.run(principal(request).rate_key, key, fingerprint(*meaning), action)
    headers = {"Idempotent-Replayed": "true" if replayed else "false"}
    response = ok(data, "message already sent (idempotent replay)" if replayed else "message sent")
    response.headers.update(headers)
    return response


routes = [Route("/messages", send, methods=["POST"])]
