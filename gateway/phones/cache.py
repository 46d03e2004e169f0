"""The on-WhatsApp answer cache behind ``POST /validate/phone``.

:class:`PhoneCache` remembers answers, positive and negative, for
``PHONE_CACHE_TTL_S``; concurrent checks of one number share a single driver
call. It is keyed on canonical digits only (callers normalise first), so its
memory is bounded by ``PHONE_CACHE_SIZE`` short entries.

The cache is shared by every account (a number's WhatsApp status is the same for
all of them), but the ``cached`` flag an answer carries is per asker: a tenant
sees ``cached: true`` only for numbers it asked about itself within the TTL.
Otherwise the flag would tell tenant B which numbers tenant A looked up.
The composition root builds one (``Runtime.phone_cache``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache

from gateway.phones.rules import mask

SHARED = "*"  # the asker of callers that do not say who they are (one shared flag)


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


@dataclass(slots=True)
class _Entry:
    answer: PhoneAnswer
    askers: set[str] = field(default_factory=set)  # who has been given this answer (per-asker ``cached`` flag)


Check = Callable[[str], Awaitable[PhoneAnswer]]


class PhoneCache:
    """A TTL + size bounded cache of :class:`PhoneAnswer` by phone, with single-flight lookups.

    ``timer`` is the clock the TTL is measured on (injectable for tests).
    """

    def __init__(self, ttl_s: float, maxsize: int, timer: Callable[[], float] = time.monotonic) -> None:
        self._answers: TTLCache[str, _Entry] = TTLCache(maxsize=maxsize, ttl=ttl_s, timer=timer)
        self._inflight: dict[str, asyncio.Task[_Entry]] = {}

    def __len__(self) -> int:
        self._answers.expire()
        return len(self._answers)

    def get(self, phone: str) -> PhoneAnswer | None:
        entry = self._answers.get(phone)
        return entry.answer if entry is not None else None

    async def lookup(self, phone: str, check: Check, asker: str = SHARED) -> tuple[PhoneAnswer, bool]:
        """The answer for ``phone`` and whether ``asker`` already had it from the cache.

        On a miss, ``check(phone)`` runs once however many callers ask at the
        same time; they all get its answer (or its exception, which is not
        cached). The check runs in its own task, so a caller that goes away
        does not cancel it for the others. An answer cached for someone else is
        served without a check, flagged as not cached for this asker.
        """
        entry = self._answers.get(phone)
        if entry is not None:
            seen = asker in entry.askers
            entry.askers.add(asker)
            return entry.answer, seen
        task = self._inflight.get(phone)
        if task is None:
            task = asyncio.create_task(self._fill(phone, check), name=f"phone-check-{mask(phone)}")
            self._inflight[phone] = task
            task.add_done_callback(self._settled(phone))
        entry = await asyncio.shield(task)
        entry.askers.add(asker)
        return entry.answer, False  # every caller that waited on the check got a fresh answer

    async def _fill(self, phone: str, check: Check) -> _Entry:
        entry = _Entry(await check(phone))
        self._answers[phone] = entry
        return entry

    def _settled(self, phone: str) -> Callable[[asyncio.Task[_Entry]], None]:
        def done(task: asyncio.Task[_Entry]) -> None:
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
