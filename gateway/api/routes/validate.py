"""``POST /validate/phone`` (is this number on WhatsApp?) and ``DELETE /cache``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.errors import ApiError
from gateway.api.routes.common import json_body, phone_from, require_admin, token_from, visible_device
from gateway.phones import PhoneAnswer, PhoneCache
from gateway.runtime import runtime


def phone_cache(request: Request) -> PhoneCache:
    cache = runtime(request).services.get("phone_cache")
    if not isinstance(cache, PhoneCache):
        raise ApiError("INTERNAL_ERROR", "phone cache is not running")
    return cache


async def validate_phone(request: Request) -> Response:
    body = await json_body(request, {"token": str, "phone": str})
    token = token_from(body.get("token"), request)
    phone = phone_from(body.get("phone"), request, "phone")
    device = visible_device(request, token)

    async def check(number: str) -> PhoneAnswer:
        # Only a miss reaches the device, so a cached answer needs no connection.
        results = await device.check_phones([number])
        # Match on the number; a driver that echoes it in another form still gave one answer.
        matches = [r for r in results if r.phone == number] or (results if len(results) == 1 else [])
        if matches:
            r = matches[0]
            return PhoneAnswer(number, r.is_on_whatsapp, r.jid, r.verified_name)
        raise ApiError("VALIDATION_FAILED", "WhatsApp gave no answer for this number")

    answer, cached = await phone_cache(request).lookup(phone, check)
    return ok(answer.to_api(cached), "phone validation result")


async def clear_cache(request: Request) -> Response:
    require_admin(request)  # the cache is shared by every account
    cleared = phone_cache(request).clear()
    return ok({"cleared": cleared}, "cache cleared")


routes = [
    Route("/validate/phone", validate_phone, methods=["POST"]),
    Route("/cache", clear_cache, methods=["DELETE"]),
]
