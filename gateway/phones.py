"""Phone rules (CONTRACT §3) in one place, and the on-WhatsApp answer cache.

``normalize("+60 12-345 6789") == "60123456789"``; a leading ``0`` becomes the
default country code; the digits must be a number ``phonenumbers`` calls valid.

:class:`PhoneCache` remembers ``POST /validate/phone`` answers, positive and
negative, for ``PHONE_CACHE_TTL_S``; concurrent checks of one number share a
single driver call. The ``start`` hook puts it in ``rt.services["phone_cache"]``.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import phonenumbers
from cachetools import TTLCache

if TYPE_CHECKING:
    from gateway.runtime import Runtime

_SEPARATORS = re.compile(r"[\s\-.()]")
_JID = re.compile(r"^([0-9]{5,20})@s\.whatsapp\.net$|^([0-9]{5,20}(?:-[0-9]{5,20})?)@g\.us$", re.IGNORECASE)


class InvalidPhone(ValueError):
    """The input is not a valid phone number."""


def normalize(raw: str, default_country_code: str = "60") -> str:
    """Canonical digits of ``raw`` or :class:`InvalidPhone`."""
    if not isinstance(raw, str):
        raise InvalidPhone("phone must be a string")
    return _normalized(raw, default_country_code)


@functools.lru_cache(maxsize=16384)  # a send normalizes its token and its recipient: both repeat
def _normalized(raw: str, default_country_code: str) -> str:
    digits = _SEPARATORS.sub("", raw.strip())
    digits = digits.removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        raise InvalidPhone(f"{raw!r} is not a phone number")
    if digits.startswith("0"):
        digits = default_country_code + digits[1:]
    if not 7 <= len(digits) <= 15 or not _valid_digits(digits):
        raise InvalidPhone(f"{raw!r} is not a valid phone number")
    return digits


@functools.lru_cache(maxsize=16384)  # ~3 MB at most
def _valid_digits(digits: str) -> bool:
    """phonenumbers' verdict on ``+digits`` (pure Python and slow; every send asks twice, so remember it)."""
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None)))
    except phonenumbers.NumberParseException:
        return False


def to_jid(raw: str, default_country_code: str = "60") -> str:
    """A recipient as a JID: phone digits become ``<digits>@s.whatsapp.net``;
    a user or group JID is kept (its user part checked)."""
    if isinstance(raw, str) and "@" in raw:
        m = _JID.match(raw.strip())
        if not m:
            raise InvalidPhone(f"{raw!r} is not a WhatsApp JID")
        if m.group(1):
            return normalize(m.group(1), default_country_code) + "@s.whatsapp.net"
        return m.group(2) + "@g.us"
    return normalize(raw, default_country_code) + "@s.whatsapp.net"


def mask(phone: str | None) -> str | None:
    """``60123456789`` → ``6012****789`` for display."""
    if not phone:
        return None
    if len(phone) <= 7:
        return phone[:2] + "*" * (len(phone) - 2)
    return phone[:4] + "*" * (len(phone) - 7) + phone[-3:]


# --- the validation cache ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhoneAnswer:
    """WhatsApp's answer for one number."""

    phone: str
    is_on_whatsapp: bool
    jid: str | None
    verified_name: str | None = None

    def to_api(self, cached: bool) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "isOnWhatsApp": self.is_on_whatsapp,
            "jid": self.jid,
            "verifiedName": self.verified_name,
            "cached": cached,
        }


Check = Callable[[str], Awaitable[PhoneAnswer]]


class PhoneCache:
    """A TTL + size bounded cache of :class:`PhoneAnswer` by phone, with single-flight lookups.

    ``timer`` is the clock the TTL is measured on (injectable for tests).
    """

    def __init__(self, ttl_s: float, maxsize: int, timer: Callable[[], float] = time.monotonic) -> None:
        self._answers: TTLCache[str, PhoneAnswer] = TTLCache(maxsize=maxsize, ttl=ttl_s, timer=timer)
        self._inflight: dict[str, asyncio.Task[PhoneAnswer]] = {}

    def __len__(self) -> int:
        self._answers.expire()
        return len(self._answers)

    def get(self, phone: str) -> PhoneAnswer | None:
        return self._answers.get(phone)

    async def lookup(self, phone: str, check: Check) -> tuple[PhoneAnswer, bool]:
        """The answer for ``phone`` and whether it came from the cache.

        On a miss, ``check(phone)`` runs once however many callers ask at the
        same time; they all get its answer (or its exception, which is not
        cached). The check runs in its own task, so a caller that goes away
        does not cancel it for the others.
        """
        hit = self._answers.get(phone)
        if hit is not None:
            return hit, True
        task = self._inflight.get(phone)
        if task is None:
            task = asyncio.create_task(self._fill(phone, check), name=f"phone-check-{mask(phone)}")
            self._inflight[phone] = task
            task.add_done_callback(self._settled(phone))
        return await asyncio.shield(task), False

    async def _fill(self, phone: str, check: Check) -> PhoneAnswer:
        answer = await check(phone)
        self._answers[phone] = answer
        return answer

    def _settled(self, phone: str) -> Callable[[asyncio.Task[PhoneAnswer]], None]:
        def done(task: asyncio.Task[PhoneAnswer]) -> None:
            if self._inflight.get(phone) is task:
                del self._inflight[phone]
            if not task.cancelled():
                task.exception()  # retrieved: every caller may have gone away

        return done

    def clear(self) -> int:
        """Forget every answer; returns how many there were."""
        n = len(self)
        self._answers.clear()
        return n


async def start(rt: Runtime) -> None:
    s = rt.settings
    rt.services["phone_cache"] = PhoneCache(s.phone_cache_ttl_s, s.phone_cache_size)
