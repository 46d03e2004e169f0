"""Group management (CONTRACT §12): create, info, participants, invite link, leave.

Listing the groups a device is in stays ``GET /devices/{token}/groups`` (devices routes).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import invalid
from gateway.api.models.decode import read
from gateway.api.models.messages import (
    GroupCreate,
    GroupDetail,
    GroupLeft,
    InviteLink,
    ParticipantsChanged,
    ParticipantsIn,
)
from gateway.api.models.responses import of
from gateway.api.routes.common import path_token, phone_from, visible_device
from gateway.devices.device import Device
from gateway.drivers.base import ParticipantAction
from gateway.messages.service import call, group_json

ACTIONS: tuple[ParticipantAction, ...] = ("add", "remove", "promote", "demote")


def _device(request: Request) -> Device:
    return visible_device(request, path_token(request))


def _group(request: Request) -> str:
    jid = str(request.path_params.get("jid", ""))
    user, _, server = jid.partition("@")
    if server != "g.us" or not user or not user.replace("-", "").isdigit():
        raise invalid("'jid' must be a group JID (…@g.us)")
    return jid


def _phones(request: Request, raw: list[str] | None) -> list[str]:
    return [f"{phone_from(p, request, 'participants')}@s.whatsapp.net" for p in raw or ()]


async def create_group(request: Request) -> Response:
    device = _device(request)
    body = await read(request, GroupCreate)
    name = (body.name or "").strip()
    if not name or len(name) > 100:
        raise invalid("'name' must be 1 to 100 characters")
    if body.participants is None:
        raise invalid("'participants' must be an array of phone numbers")
    members = _phones(request, body.participants)
    info = await call(device, lambda: device.driver.create_group(name, members))
    return ok(of(GroupDetail, group_json(info)), "group created")


async def group_info(request: Request) -> Response:
    device = _device(request)
    jid = _group(request)
    info = await call(device, lambda: device.driver.group_info(jid), "INTERNAL_ERROR")
    return ok(of(GroupDetail, group_json(info)), "group")


async def participants(request: Request) -> Response:
    device = _device(request)
    jid = _group(request)
    body = await read(request, ParticipantsIn)
    action = next((a for a in ACTIONS if a == body.action), None)
    if action is None:
        raise invalid("'action' must be add, remove, promote or demote")
    if not body.participants:
        raise invalid("'participants' must be an array of 1 or more phone numbers")
    members = _phones(request, body.participants)
    results = await call(device, lambda: device.driver.update_participants(jid, action, members))
    data = {
        "jid": jid,
        "action": action,
        "results": [{"phone": r.phone, "ok": r.ok, "error": r.error} for r in results],
    }
    return ok(of(ParticipantsChanged, data), "participants updated")


async def invite(request: Request) -> Response:
    device = _device(request)
    jid = _group(request)
    raw = request.query_params.get("revoke", "false").lower()
    if raw not in ("true", "false", "1", "0", ""):
        raise invalid("'revoke' must be true or false")
    revoke = raw in ("true", "1")
    link = await call(device, lambda: device.driver.invite_link(jid, revoke))
    return ok(InviteLink(jid=jid, link=link), "invite link")


async def leave(request: Request) -> Response:
    device = _device(request)
    jid = _group(request)
    await call(device, lambda: device.driver.leave_group(jid))
    return ok(GroupLeft(jid=jid, left=True), "left the group")


routes = [
    Route("/devices/{token}/groups", create_group, methods=["POST"]),
    Route("/devices/{token}/groups/{jid}", group_info, methods=["GET"]),
    Route("/devices/{token}/groups/{jid}", leave, methods=["DELETE"]),
    Route("/devices/{token}/groups/{jid}/participants", participants, methods=["POST"]),
    Route("/devices/{token}/groups/{jid}/invite", invite, methods=["GET"]),
]
