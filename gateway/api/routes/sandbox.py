"""``/sandbox/devices/{token}/…``: stand-ins for the phone and the network.

Mounted only when ``WA_DRIVER=sandbox``; admin key only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import message_content as content
from gateway.api.envelope import ok
from gateway.api.errors import ApiError, invalid
from gateway.api.models.base import MAX_TEXT
from gateway.api.models.decode import read
from gateway.api.models.messages import (
    ActionSimulated,
    IncomingSimulated,
    ReactionSimulated,
    SandboxEdit,
    SandboxIncoming,
    SandboxMediaIn,
    SandboxRevoke,
    SandboxSent,
    SandboxSentList,
)
from gateway.api.models.requests import SandboxHistory
from gateway.api.models.responses import DeviceState, HistorySimulated, of
from gateway.api.routes.common import path_token, phone_from, require_admin, visible_device
from gateway.api.routes.media import api_error, media_service
from gateway.drivers.base import MediaType, NotConnectedError
from gateway.drivers.sandbox import SandboxDriver, SandboxMedia, SandboxStateError
from gateway.media.errors import MediaError
from gateway.media.mime import detect_bytes

_MEDIA_TYPES: tuple[MediaType, ...] = ("image", "video", "audio", "document", "sticker")


def _sandbox(request: Request) -> tuple[str, SandboxDriver]:
    require_admin(request)
    token = path_token(request)
    device = visible_device(request, token)
    if not isinstance(device.driver, SandboxDriver):
        raise ApiError("NOT_FOUND", "sandbox routes need WA_DRIVER=sandbox")
    return token, device.driver


async def _state(request: Request, token: str, message: str, *wait_for: str) -> Response:
    device = visible_device(request, token)
    if wait_for:
        await device.wait_for_status(*wait_for)
    return ok(of(DeviceState, device.state()), message)


async def scan(request: Request) -> Response:
    token, driver = _sandbox(request)
    try:
        driver.scan()
    except SandboxStateError as exc:
        raise invalid(f"cannot scan: {exc}") from exc
    return await _state(request, token, "scanned", "connected")


async def incoming(request: Request) -> Response:
    """An incoming message of any kind (§11's sandbox paragraph), or a reaction."""
    token, driver = _sandbox(request)
    body = await read(request, SandboxIncoming)
    sender, lid = _sender(request, body)
    if body.from_me and sender is None:
        raise ApiError("INVALID_PHONE", "'from' names the chat partner of a fromMe message")
    if body.chat is not None and not body.chat.endswith("@g.us"):
        raise invalid("'chat' must be a group JID (…@g.us); a direct chat is named by 'from'")
    try:
        if body.reaction is not None:
            target, emoji = content.reaction(body.reaction)
            if sender is None:
                raise ApiError("INVALID_PHONE", "a reaction needs 'from'")
            driver.react(sender, target, emoji, body.chat)
            return ok(ReactionSimulated(token=token, message_id=target, sender=sender), "incoming reaction simulated")
        kind = _incoming_kind(body)
        media = await _media(request, body.media) if body.media is not None else None
        if media is not None:
            assert body.media is not None
            text = body.media.caption
            if text is not None and len(text) > MAX_TEXT:
                raise ApiError("INVALID_MESSAGE", "'media.caption' must be at most 65,536 characters")
        elif kind == "text":
            text = content.text(body.text)
        else:
            text = None
        msg = driver.incoming(
            sender,
            body.name,
            text,
            sender_lid=lid,
            from_me=bool(body.from_me),
            chat=body.chat,
            media=media,
            location=content.location(body.location) if body.location is not None else None,
            contacts=content.contacts(body.contacts) if body.contacts is not None else (),
            poll=content.poll(body.poll) if body.poll is not None else None,
            reply_to=body.reply_to,
            mentions=tuple(phone_from(m, request, "mentions") for m in body.mentions or ()),
        )
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    return ok(IncomingSimulated(token=token, id=msg.id, sender=msg.sender, from_lid=lid), "incoming message simulated")


def _sender(request: Request, body: SandboxIncoming) -> tuple[str | None, str | None]:
    """``from`` (phone digits) or ``fromLid`` (``<digits>@lid``, an unresolvable sender): exactly one."""
    lid = body.from_lid
    if lid is not None:
        if body.sender is not None:
            raise invalid("give 'from' or 'fromLid', not both")
        user, _, server = lid.partition("@")
        if server != "lid" or not user.isdigit() or not 5 <= len(user) <= 20:
            raise invalid("'fromLid' must be a LID: <digits>@lid")
        return None, lid
    return phone_from(body.sender, request, "from"), None


def _incoming_kind(body: SandboxIncoming) -> str:
    present = [f for f in ("media", "location", "contacts", "poll") if getattr(body, f) is not None]
    if len(present) > 1 or (present and body.text is not None):
        raise ApiError("INVALID_MESSAGE", "a message has exactly one content field")
    return present[0] if present else "text"


async def _media(request: Request, raw: SandboxMediaIn) -> SandboxMedia:
    """``{data (base64) | url, mimetype?, filename?, caption?, voiceNote?, type?}``: the bytes the phone
    sends. A ``url`` is fetched by the media service, with its limits; without ``mimetype`` the type is
    read from the bytes."""
    if (raw.data is None) == (raw.url is None):
        raise ApiError("INVALID_MEDIA", "'media' needs exactly one of 'data' (base64) or 'url'")
    if raw.url is not None:
        blob = await _fetched(request, raw.url)
    else:
        try:
            blob = base64.b64decode(raw.data or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiError("INVALID_MEDIA", "'media.data' is not valid base64") from exc
    if not blob:
        raise ApiError("INVALID_MEDIA", "'media.data' is empty")
    mimetype = raw.mimetype or detect_bytes(blob)
    if "/" not in mimetype:
        raise ApiError("INVALID_MEDIA", "'media.mimetype' must be a MIME type")
    wanted = raw.type or _type_of(mimetype)
    kind = next((t for t in _MEDIA_TYPES if t == wanted), None)
    if kind is None:
        raise ApiError("INVALID_MEDIA", f"'media.type' must be one of {', '.join(_MEDIA_TYPES)}")
    return SandboxMedia(kind, blob, mimetype, raw.filename, bool(raw.voice_note))


async def _fetched(request: Request, url: str) -> bytes:
    svc = media_service(request)
    try:
        with svc.files.spool(svc.max_bytes) as spool:
            await svc.fetch(spool, url)
            spool.close()
            return spool.path.read_bytes()  # the simulated phone keeps its media in memory
    except MediaError as exc:
        raise api_error(exc) from exc


def _type_of(mimetype: str) -> str:
    major = mimetype.partition("/")[0]
    return major if major in ("image", "video", "audio") else "document"


async def edit(request: Request) -> Response:
    """The author of an incoming message edits it → ``message.edited``."""
    token, driver = _sandbox(request)
    body = await read(request, SandboxEdit)
    message_id = content.message_id(body.id, "id")
    text = content.text(body.text)
    try:
        driver.edit_incoming(message_id, text)
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    except SandboxStateError as exc:
        raise ApiError("NOT_FOUND", str(exc)) from exc
    return ok(ActionSimulated(token=token, id=message_id), "edit simulated")


async def revoke(request: Request) -> Response:
    """The author of an incoming message deletes it for everyone → ``message.revoked``."""
    token, driver = _sandbox(request)
    body = await read(request, SandboxRevoke)
    message_id = content.message_id(body.id, "id")
    try:
        driver.revoke_incoming(message_id)
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    except SandboxStateError as exc:
        raise ApiError("NOT_FOUND", str(exc)) from exc
    return ok(ActionSimulated(token=token, id=message_id), "revoke simulated")


async def history(request: Request) -> Response:
    token, driver = _sandbox(request)
    body = await read(request, SandboxHistory)
    if body.contacts is None:
        raise invalid("'contacts' must be an array of {phone, name}")
    contacts = [(phone_from(item.phone, request, "phone"), item.name) for item in body.contacts]
    try:
        driver.history(contacts)
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    return ok(HistorySimulated(token=token, count=len(contacts)), "history sync simulated")


async def _network_event(request: Request, event: Callable[[SandboxDriver], None], message: str) -> Response:
    """Something WhatsApp does to a connected device's connection (``drop``, ``replace``): its state after."""
    token, driver = _sandbox(request)
    try:
        event(driver)
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    return await _state(request, token, message, "disconnected")


async def drop(request: Request) -> Response:
    return await _network_event(request, SandboxDriver.drop, "connection dropped")


async def replace(request: Request) -> Response:
    return await _network_event(request, SandboxDriver.replace, "session opened by another client")


async def unlink(request: Request) -> Response:
    token, driver = _sandbox(request)
    try:
        driver.unlink()
    except SandboxStateError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", f"cannot unlink: {exc}") from exc
    return await _state(request, token, "unlinked from the phone", "logged_out")


async def sent(request: Request) -> Response:
    token, driver = _sandbox(request)
    messages = [of(SandboxSent, m) for m in driver.sent()]
    return ok(SandboxSentList(token=token, messages=messages), "sent messages")


routes = [
    Route("/sandbox/devices/{token}/scan", scan, methods=["POST"]),
    Route("/sandbox/devices/{token}/incoming", incoming, methods=["POST"]),
    Route("/sandbox/devices/{token}/edit", edit, methods=["POST"]),
    Route("/sandbox/devices/{token}/revoke", revoke, methods=["POST"]),
    Route("/sandbox/devices/{token}/history", history, methods=["POST"]),
    Route("/sandbox/devices/{token}/drop", drop, methods=["POST"]),
    Route("/sandbox/devices/{token}/replace", replace, methods=["POST"]),
    Route("/sandbox/devices/{token}/unlink", unlink, methods=["POST"]),
    Route("/sandbox/devices/{token}/sent", sent, methods=["GET"]),
]
