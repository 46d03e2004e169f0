"""``/sandbox/devices/{token}/…``: stand-ins for the phone and the network.

Mounted only when ``WA_DRIVER=sandbox``; admin key only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import ApiError, invalid
from gateway.api.routes.common import json_body, path_token, phone_from, require_admin, visible_device
from gateway.drivers.base import NotConnectedError
from gateway.drivers.sandbox import SandboxDriver, SandboxStateError

MAX_TEXT = 65_536


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
    return ok(device.state(), message)


async def scan(request: Request) -> Response:
    token, driver = _sandbox(request)
    try:
        driver.scan()
    except SandboxStateError as exc:
        raise invalid(f"cannot scan: {exc}") from exc
    return await _state(request, token, "scanned", "connected")


async def incoming(request: Request) -> Response:
    token, driver = _sandbox(request)
    body = await json_body(request, {"from": str, "name": str, "text": str})
    sender = phone_from(body.get("from"), request, "from")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise ApiError("INVALID_MESSAGE", "text must be 1 to 65,536 characters, not only whitespace")
    try:
        msg = driver.incoming(sender, body.get("name"), text)
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    return ok({"token": token, "id": msg.id, "from": sender}, "incoming message simulated")


async def history(request: Request) -> Response:
    token, driver = _sandbox(request)
    body = await json_body(request, {"contacts": list})
    raw = body.get("contacts")
    if not isinstance(raw, list):
        raise invalid("'contacts' must be an array of {phone, name}")
    contacts: list[tuple[str, str | None]] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name", ""), (str, type(None))):
            raise invalid("each contact must be an object {phone, name}")
        contacts.append((phone_from(item.get("phone"), request, "phone"), item.get("name")))
    try:
        driver.history(contacts)
    except NotConnectedError as exc:
        raise ApiError("DEVICE_NOT_CONNECTED", "device is not connected") from exc
    return ok({"token": token, "count": len(contacts)}, "history sync simulated")


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
    return ok({"token": token, "messages": driver.sent()}, "sent messages")


routes = [
    Route("/sandbox/devices/{token}/scan", scan, methods=["POST"]),
    Route("/sandbox/devices/{token}/incoming", incoming, methods=["POST"]),
    Route("/sandbox/devices/{token}/history", history, methods=["POST"]),
    Route("/sandbox/devices/{token}/drop", drop, methods=["POST"]),
    Route("/sandbox/devices/{token}/unlink", unlink, methods=["POST"]),
    Route("/sandbox/devices/{token}/sent", sent, methods=["GET"]),
]
