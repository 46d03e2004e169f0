"""``/sandbox/devices/{token}/…``: stand-ins for the phone and the network.

Mounted only when ``WA_DRIVER=sandbox``; admin key only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import ApiError, invalid
from gateway.api.models.base import MAX_TEXT
from gateway.api.models.decode import read
from gateway.api.models.requests import SandboxHistory, SandboxIncoming
from gateway.api.models.responses import (
    DeviceState,
    HistorySimulated,
    IncomingSimulated,
    SandboxSent,
    SandboxSentList,
    of,
)
from gateway.api.routes.common import path_token, phone_from, require_admin, visible_device
from gateway.drivers.base import NotConnectedError
from gateway.drivers.sandbox import SandboxDriver, SandboxStateError


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
    token, driver = _sandbox(request)
    body = await read(request, SandboxIncoming)
    sender = phone_from(body.sender, request, "from")
    text = body.text
    if text is None or not text.strip() or len(text) > MAX_TEXT:
        raise ApiError("INVALID_MESSAGE", "text must be 1 to 65,536 characters, not only whitespace")
    try:
        msg = driver.incoming(sender, body.name, text)
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    return ok(IncomingSimulated(token=token, id=msg.id, sender=sender), "incoming message simulated")


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


async def drop(request: Request) -> Response:
    token, driver = _sandbox(request)
    try:
        driver.drop()
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    return await _state(request, token, "connection dropped", "disconnected")


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
    Route("/sandbox/devices/{token}/history", history, methods=["POST"]),
    Route("/sandbox/devices/{token}/drop", drop, methods=["POST"]),
    Route("/sandbox/devices/{token}/unlink", unlink, methods=["POST"]),
    Route("/sandbox/devices/{token}/sent", sent, methods=["GET"]),
]
