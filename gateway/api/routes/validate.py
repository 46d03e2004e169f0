"""``POST /validate/phone`` (is this number on WhatsApp?) and ``DELETE /cache``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.envelope import ok
from gateway.api.models.decode import read
from gateway.api.models.requests import ValidatePhone
from gateway.api.models.responses import CacheCleared, PhoneValidation
from gateway.api.routes.common import phone_from, principal, require_admin, token_from, visible_device
from gateway.phones import PhoneCache
from gateway.runtime import runtime
from gateway.validation import validate


def phone_cache(request: Request) -> PhoneCache:
    return runtime(request).phone_cache


async def validate_phone(request: Request) -> Response:
    body = await read(request, ValidatePhone)
    token = token_from(body.token, request)
    phone = phone_from(body.phone, request, "phone")
    device = visible_device(request, token)
    # ``cached`` is per account: it must not tell one tenant what another looked up.
    answer, cached = await validate(phone_cache(request), device, phone, asker=principal(request).rate_key)
    data = PhoneValidation(
        phone=answer.phone,
        is_on_whatsapp=answer.is_on_whatsapp,
        jid=answer.jid,
        verified_name=answer.verified_name,
        cached=cached,
    )
    return ok(data, "phone validation result")


async def clear_cache(request: Request) -> Response:
    require_admin(request)  # the cache is shared by every account
    cleared = phone_cache(request).clear()
    inv = runtime(request).invalidations
    if inv is not None:
        inv.phone_cache_cleared()  # every other node empties its own
    return ok(CacheCleared(cleared=cleared), "cache cleared")


routes = [
    Route("/validate/phone", validate_phone, methods=["POST"]),
    Route("/cache", clear_cache, methods=["DELETE"]),
]
