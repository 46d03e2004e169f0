"""The message store (CONTRACT §12): ``/devices/{token}/messages…`` and ``/devices/{token}/chats…``.

Thin: checks the request in the contract's order, then calls
:class:`gateway.messages.service.MessageService`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import message_content as content
from gateway.api.envelope import ok
from gateway.api.errors import invalid
from gateway.api.models.decode import read
from gateway.api.models.messages import (
    ChatPage,
    EditMessage,
    MessagePage,
    MessagesRead,
    PresenceIn,
    PresenceShown,
    StoredMessage,
)
from gateway.api.models.responses import of
from gateway.api.routes.common import path_token, query_int, visible_device
from gateway.devices.device import Device
from gateway.drivers.base import PresenceState
from gateway.messages.service import MessageService, call, decode_chats_cursor, decode_cursor, parse_time
from gateway.phones import InvalidPhone, to_jid
from gateway.runtime import runtime

MAX_LIMIT = 500
DIRECTIONS = ("in", "out")
TYPES = (
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "poll",
    "reaction",
    "unknown",
)
PRESENCE: tuple[PresenceState, ...] = ("composing", "recording", "paused")


def service(request: Request) -> MessageService:
    return runtime(request).messages


def _device(request: Request) -> Device:
    return visible_device(request, path_token(request))


def _message_id(request: Request) -> str:
    return content.message_id(request.path_params.get("id"), "id")


async def list_messages(request: Request) -> Response:
    device = _device(request)
    q = request.query_params
    limit = query_int(request, "limit", 50, 1, MAX_LIMIT)
    cursor = decode_cursor("m", q.get("cursor"))
    direction, kind, chat = q.get("direction") or None, q.get("type") or None, q.get("chat") or None
    if direction is not None and direction not in DIRECTIONS:
        raise invalid("'direction' must be in or out")
    if kind is not None and kind not in TYPES:
        raise invalid(f"'type' must be one of {', '.join(TYPES)}")
    if chat is not None:
        chat = _chat(request, chat)
    since, until = parse_time(q.get("since"), "since"), parse_time(q.get("until"), "until")
    messages, next_cursor = await service(request).page(
        device.token, limit, cursor, chat=chat, direction=direction, type=kind, since=since, until=until
    )
    page = MessagePage(messages=[of(StoredMessage, m) for m in messages], next_cursor=next_cursor)
    return ok(page, f"{len(messages)} messages")


async def get_message(request: Request) -> Response:
    device = _device(request)
    svc = service(request)
    row = await svc.stored(device.token, _message_id(request), history=True)
    return ok(of(StoredMessage, svc.message_json(row, history=True)), "message")


async def edit_message(request: Request) -> Response:
    device = _device(request)
    msg_id = _message_id(request)
    body = await read(request, EditMessage)
    text = content.text(body.text)
    return ok(of(StoredMessage, await service(request).edit(device, msg_id, text)), "message edited")


async def revoke_message(request: Request) -> Response:
    device = _device(request)
    data = await service(request).revoke(device, _message_id(request))
    return ok(of(StoredMessage, data), "message deleted for everyone")


async def read_message(request: Request) -> Response:
    device = _device(request)
    data = await service(request).mark_read(device, _message_id(request))
    return ok(of(MessagesRead, data), "marked read")


async def list_chats(request: Request) -> Response:
    device = _device(request)
    limit = query_int(request, "limit", 50, 1, MAX_LIMIT)
    cursor = decode_chats_cursor(request.query_params.get("cursor"))
    chats, next_cursor = await service(request).chats(device.token, limit, cursor)
    return ok(of(ChatPage, {"chats": chats, "nextCursor": next_cursor}), f"{len(chats)} chats")


async def presence(request: Request) -> Response:
    device = _device(request)
    chat = _chat(request, request.path_params.get("jid", ""))
    body = await read(request, PresenceIn)
    state = next((s for s in PRESENCE if s == body.state), None)
    if state is None:
        raise invalid("'state' must be composing, recording or paused")
    await call(device, lambda: device.driver.send_presence(chat, state))
    return ok(PresenceShown(token=device.token, chat=chat, state=state), "presence sent")


def _chat(request: Request, raw: str) -> str:
    """A chat named by phone number or JID, as a JID (INVALID_REQUEST otherwise)."""
    try:
        return to_jid(raw, runtime(request).settings.default_country_code)
    except InvalidPhone as exc:
        raise invalid(f"'{raw}' is not a phone number or a chat JID") from exc


routes = [
    Route("/devices/{token}/messages", list_messages, methods=["GET"]),
    Route("/devices/{token}/messages/{id}", get_message, methods=["GET"]),
    Route("/devices/{token}/messages/{id}", edit_message, methods=["PATCH"]),
    Route("/devices/{token}/messages/{id}", revoke_message, methods=["DELETE"]),
    Route("/devices/{token}/messages/{id}/read", read_message, methods=["POST"]),
    Route("/devices/{token}/chats", list_chats, methods=["GET"]),
    Route("/devices/{token}/chats/{jid}/presence", presence, methods=["POST"]),
]
