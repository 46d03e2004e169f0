"""Is a number on WhatsApp: the phone cache in front of one device's check.

Only a cache miss reaches the device, so a cached answer needs no connection; the
device's answer is matched to the number asked (a driver that echoes it in another
form still gave one answer), and no answer at all is ``VALIDATION_FAILED``.
"""

from __future__ import annotations

from gateway.api.errors import ApiError
from gateway.devices import Device
from gateway.drivers.base import PhoneCheck
from gateway.phones import PhoneAnswer, PhoneCache
from gateway.phones.cache import SHARED


async def validate(cache: PhoneCache, device: Device, phone: str, asker: str = SHARED) -> tuple[PhoneAnswer, bool]:
    """The answer for ``phone`` (normalized digits) and whether ``asker`` (an account, or the admin)
    already had it from the cache — the flag is per asker, the cache shared (see gateway.phones.cache)."""

    async def check(number: str) -> PhoneAnswer:
        found = answer_for(number, await device.check_phones([number]))
        if found is None:
            raise ApiError("VALIDATION_FAILED", "WhatsApp gave no answer for this number")
        return PhoneAnswer(number, found.is_on_whatsapp, found.jid, found.verified_name)

    return await cache.lookup(phone, check, asker)


def answer_for(number: str, results: list[PhoneCheck]) -> PhoneCheck | None:
    """The result for ``number``: the one naming it, else the only one there is."""
    matches = [r for r in results if r.phone == number] or (results if len(results) == 1 else [])
    return matches[0] if matches else None
