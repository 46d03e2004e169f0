"""The validation cache: TTL on an injected clock, size bound, single-flight."""

from __future__ import annotations

import asyncio

import pytest

from gateway.api.errors import ApiError
from gateway.phones import PhoneAnswer, PhoneCache

A, B, C = "60123456789", "60198765432", "60171222333"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWhatsApp:
    """Counts checks; answers "on WhatsApp" unless the number ends in 0; can be held."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()
        self.fail: Exception | None = None
        self.held: set[str] = set()

    def hold(self, *phones: str) -> None:
        """Checks of these numbers wait for ``release``."""
        self.held = set(phones)
        self.release.clear()

    async def __call__(self, phone: str) -> PhoneAnswer:
        self.calls.append(phone)
        self.entered.set()
        if phone in self.held:
            await self.release.wait()
        if self.fail is not None:
            raise self.fail
        on = not phone.endswith("0")
        return PhoneAnswer(phone, on, f"{phone}@s.whatsapp.net" if on else None)


async def test_second_lookup_is_cached_until_the_ttl_passes() -> None:
    """An answer is served from the cache until TTL seconds of the injected clock have passed."""
    clock, wa = Clock(), FakeWhatsApp()
    cache = PhoneCache(ttl_s=60, maxsize=10, timer=clock)
    first, cached = await cache.lookup(A, wa)
    assert (first.is_on_whatsapp, cached) == (True, False)
    clock.now += 59
    again, cached = await cache.lookup(A, wa)
    assert (again, cached) == (first, True)
    clock.now += 2
    _, cached = await cache.lookup(A, wa)
    assert cached is False
    assert wa.calls == [A, A]


async def test_negative_answers_are_cached_too() -> None:
    """`not on WhatsApp` is remembered like a positive answer."""
    wa = FakeWhatsApp()
    cache = PhoneCache(ttl_s=60, maxsize=10, timer=Clock())
    no = "60123456780"
    answer, _ = await cache.lookup(no, wa)
    assert answer.is_on_whatsapp is False and answer.jid is None
    answer, cached = await cache.lookup(no, wa)
    assert cached is True and answer.is_on_whatsapp is False
    assert wa.calls == [no]


async def test_size_is_bounded() -> None:
    """Past maxsize the oldest answers are evicted; len never exceeds it."""
    wa = FakeWhatsApp()
    cache = PhoneCache(ttl_s=60, maxsize=2, timer=Clock())
    for phone in (A, B, C):
        await cache.lookup(phone, wa)
    assert len(cache) == 2
    assert cache.get(C) is not None


async def test_zero_ttl_caches_nothing() -> None:
    """PHONE_CACHE_TTL_S=0 turns caching off."""
    wa = FakeWhatsApp()
    cache = PhoneCache(ttl_s=0, maxsize=10, timer=Clock())
    await cache.lookup(A, wa)
    _, cached = await cache.lookup(A, wa)
    assert cached is False and wa.calls == [A, A]


async def test_concurrent_lookups_make_one_driver_call() -> None:
    """Twenty callers asking for one number while it is being checked share one check."""
    wa = FakeWhatsApp()
    wa.hold(A)
    cache = PhoneCache(ttl_s=60, maxsize=10, timer=Clock())
    tasks = [asyncio.create_task(cache.lookup(A, wa)) for _ in range(20)]
    await wa.entered.wait()
    other = asyncio.create_task(cache.lookup(B, wa))  # a different number is not held up
    answer_b, _ = await other
    assert answer_b.phone == B
    wa.release.set()
    results = await asyncio.gather(*tasks)
    assert wa.calls == [A, B]
    assert {r[0] for r in results} == {results[0][0]}


async def test_a_failed_check_is_shared_but_not_cached() -> None:
    """Every waiter sees the failure; the next lookup tries WhatsApp again."""
    wa = FakeWhatsApp()
    wa.hold(A)
    wa.fail = ApiError("VALIDATION_FAILED", "boom")
    cache = PhoneCache(ttl_s=60, maxsize=10, timer=Clock())
    tasks = [asyncio.create_task(cache.lookup(A, wa)) for _ in range(3)]
    await wa.entered.wait()
    wa.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ApiError) and r.code == "VALIDATION_FAILED" for r in results)
    wa.fail = None
    answer, cached = await cache.lookup(A, wa)
    assert answer.is_on_whatsapp and cached is False
    assert wa.calls == [A, A]


async def test_a_caller_that_goes_away_does_not_cancel_the_check() -> None:
    """Cancelling the first caller leaves the shared check running for the others."""
    wa = FakeWhatsApp()
    wa.hold(A)
    cache = PhoneCache(ttl_s=60, maxsize=10, timer=Clock())
    first = asyncio.create_task(cache.lookup(A, wa))
    await wa.entered.wait()
    second = asyncio.create_task(cache.lookup(A, wa))
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    wa.release.set()
    answer, _ = await second
    assert answer.is_on_whatsapp and wa.calls == [A]


async def test_clear_reports_how_many_answers_were_dropped() -> None:
    """clear() empties the cache and says how many live answers it held (expired ones not counted)."""
    clock, wa = Clock(), FakeWhatsApp()
    cache = PhoneCache(ttl_s=60, maxsize=10, timer=clock)
    await cache.lookup(A, wa)
    clock.now += 30
    await cache.lookup(B, wa)
    clock.now += 31  # A expired, B still live
    assert cache.clear() == 1
    assert len(cache) == 0
    _, cached = await cache.lookup(B, wa)
    assert cached is False
