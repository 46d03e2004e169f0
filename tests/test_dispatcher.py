"""The webhook dispatcher with a fake clock and mocked HTTP: schedule, retries, dead letter, limits.

HTTP is faked at the dispatcher's seam (tests/support/fake_http.py); the real client against real
(hostile) servers is tested in tests/net/.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from standardwebhooks import Webhook

from gateway.settings import Settings
from gateway.store import NewDelivery, Store
from gateway.store.outbox import OutboxRow
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.schedule import backoff_s, retry_after_s
from tests.support.fake_http import Handler, HttpxPoster
from tests.support.pace import next_turn
from tests.support.poll import until

URL = "http://receiver.test/hook"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    """Wall-clock seconds that only move when the test says so (starts near now, so
    Standard Webhooks' 5-minute timestamp tolerance holds)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path)
    yield s
    await s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


def make_settings(**overrides: Any) -> Settings:
    base = Settings(
        webhook_secret=SECRET,
        webhook_retry_base_ms=1000,
        webhook_retry_max_ms=60_000,
        webhook_max_attempts=5,
        webhook_timeout_ms=2000,
    )
    return replace(base, **overrides)


@pytest.fixture
async def make(store: Store, clock: Clock, router: respx.Router) -> AsyncIterator[Callable[..., Dispatcher]]:
    """Dispatchers on the fake clock and the respx router (or a given handler / poster); stopped at teardown."""
    made: list[Dispatcher] = []

    def factory(handler: Handler | None = None, **kw: Any) -> Dispatcher:
        settings = make_settings(**kw.pop("settings", {}))
        d = Dispatcher(
            settings,
            store,
            http=kw.pop("http", None) or HttpxPoster(handler or router.async_handler),
            clock=clock,
            rand=kw.pop("rand", lambda: 1.0),
            **kw,
        )
        made.append(d)
        return d

    yield factory
    for d in made:
        if not d.stopped:
            await d.stop(grace_s=0.1)


async def enqueue(
    store: Store, clock: Clock, n: int = 1, url: str = URL, check_private: bool = False, **kw: Any
) -> None:
    await store.enqueue(
        NewDelivery(
            webhook_id=f"msg_{i}_{url}",
            event=kw.get("event", "message.received"),
            token="60123456789",
            owner_id=kw.get("owner_id"),
            url=url,
            body=b'{"event":"message.received","token":"60123456789","data":{"n":%d},"timestamp":"t"}' % i,
            check_private=check_private,
            created_at=clock(),
        )
        for i in range(n)
    )


async def rows(store: Store) -> list[OutboxRow]:
    return list(reversed(await store.list_deliveries(None, None, None, 1000)))


async def step(d: Dispatcher) -> float | None:
    """One scheduling pass, then wait for its attempts and record them."""
    delay = await d.deliver_due()
    await d.settle()
    return delay


async def drain(d: Dispatcher) -> None:
    """Scheduling passes (each settled) until nothing more is due now."""
    await d.settle()
    while True:
        before = d.stats["attempts"]
        await step(d)
        if d.stats["attempts"] == before:
            return


async def test_2xx_marks_delivered_with_headers_and_both_signatures(
    make: Any, store: Store, clock: Clock, router: respx.Router
) -> None:
    """A 2xx ends the delivery; the request carries JSON, the UA and signatures standardwebhooks accepts."""
    route = router.post(URL).mock(return_value=httpx.Response(204))
    d = make()
    await enqueue(store, clock)
    await step(d)
    (row,) = await rows(store)
    assert (row.status, row.attempts, row.delivered_at, row.last_error) == ("delivered", 1, clock.now, None)
    req = route.calls.last.request
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"].startswith("wa-gateway/")
    assert req.headers["webhook-id"] == row.webhook_id
    assert req.headers["webhook-timestamp"] == str(int(clock.now))
    assert Webhook(SECRET).verify(req.content, dict(req.headers)) == {
        "event": "message.received",
        "token": "60123456789",
        "data": {"n": 0},
        "timestamp": "t",
    }
    assert req.content == row.body


async def test_unsigned_when_no_secret(make: Any, store: Store, clock: Clock, router: respx.Router) -> None:
    """Without WEBHOOK_SECRET no signature headers are sent."""
    route = router.post(URL).mock(return_value=httpx.Response(200))
    d = make(settings={"webhook_secret": None})
    await enqueue(store, clock)
    await step(d)
    headers = route.calls.last.request.headers
    assert not {"x-webhook-signature", "webhook-id", "webhook-signature"} & set(headers)


async def test_backoff_doubles_from_base_and_caps_at_max(
    make: Any, store: Store, clock: Clock, router: respx.Router
) -> None:
    """With jitter at its top, failures wait 1, 2, 4, 8 s … capped at WEBHOOK_RETRY_MAX_MS; at its bottom, half that."""
    router.post(URL).mock(return_value=httpx.Response(500))
    for rand, expected in ((lambda: 1.0, [1, 2, 4, 5, 5]), (lambda: 0.0, [0.5, 1, 2, 2.5, 2.5])):
        d = make(rand=rand, settings={"webhook_retry_max_ms": 5000, "webhook_max_attempts": 100})
        await enqueue(store, clock)
        row_id = (await rows(store))[-1].id
        delays = []
        for _ in expected:
            await step(d)
            row = await store.get_delivery(row_id)
            assert row is not None and row.status == "pending" and row.last_error == "HTTP 500"
            delays.append(row.next_attempt_at - clock.now)
            clock.advance(row.next_attempt_at - clock.now)
        assert delays == expected
        await d.stop()


def test_jitter_stays_within_half_to_full_ceiling() -> None:
    """Equal jitter: every delay lies in [c/2, c] for c = min(max, base·2^(n-1)), and it varies."""
    rng = random.Random(7)
    for failures in range(1, 30):
        ceiling = min(3_600_000, 1000 * 2 ** (failures - 1)) / 1000
        samples = [backoff_s(failures, 1000, 3_600_000, rng.random) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > ceiling / 4


async def test_retry_after_seconds_is_honoured(make: Any, store: Store, clock: Clock, router: respx.Router) -> None:
    """503 with Retry-After: 30 → the next attempt waits 30 s, not the 1 s backoff."""
    router.post(URL).mock(return_value=httpx.Response(503, headers={"Retry-After": "30"}))
    d = make()
    await enqueue(store, clock)
    await step(d)
    (row,) = await rows(store)
    assert row.next_attempt_at - clock.now == 30
    assert await d.deliver_due() == 30  # nothing due: sleep until then
    clock.advance(29)
    assert await step(d) == 1
    assert (await rows(store))[0].attempts == 1


async def test_retry_after_http_date_and_cap(make: Any, store: Store, clock: Clock, router: respx.Router) -> None:
    """Retry-After as an HTTP date counts from now; a huge one is capped at WEBHOOK_RETRY_MAX_MS; junk is ignored."""
    when = format_datetime(datetime.fromtimestamp(clock.now + 120, UTC), usegmt=True)
    assert retry_after_s(when, clock.now) == 120
    assert retry_after_s("soon", clock.now) is None
    assert retry_after_s(None, clock.now) is None
    router.post(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "86400"}))
    d = make()
    await enqueue(store, clock)
    await step(d)
    (row,) = await rows(store)
    assert row.next_attempt_at - clock.now == 60  # WEBHOOK_RETRY_MAX_MS = 60 s


async def test_max_attempts_makes_it_failed_and_stops_sending(
    make: Any, store: Store, clock: Clock, router: respx.Router
) -> None:
    """After WEBHOOK_MAX_ATTEMPTS failures the row is `failed` (dead letter) and never sent again."""
    route = router.post(URL).mock(return_value=httpx.Response(500))
    d = make(settings={"webhook_max_attempts": 3})
    await enqueue(store, clock)
    for _ in range(3):
        await step(d)
        clock.advance(3600)
    (row,) = await rows(store)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 500")
    assert await step(d) is None
    assert route.call_count == 3


async def test_redirects_are_not_followed(make: Any, store: Store, clock: Clock, router: respx.Router) -> None:
    """A 302 is a failed attempt; the Location is never requested."""
    router.post(URL).mock(return_value=httpx.Response(302, headers={"Location": "http://elsewhere.test/x"}))
    elsewhere = router.route(host="elsewhere.test").mock(return_value=httpx.Response(200))
    d = make()
    await enqueue(store, clock)
    await step(d)
    (row,) = await rows(store)
    assert row.status == "pending" and row.last_error == "HTTP 302 (redirects are not followed)"
    assert elsewhere.call_count == 0


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ConnectError("refused"), "connection failed: refused"),
        (httpx.ReadTimeout("slow"), "timed out after 2000 ms"),
        (httpx.RemoteProtocolError("garbage"), "malformed response: garbage"),
    ],
)
async def test_transport_errors_are_retried(
    make: Any, store: Store, clock: Clock, router: respx.Router, error: Exception, message: str
) -> None:
    """Refused connection, timeout, protocol error → pending with the reason and a backoff."""
    router.post(URL).mock(side_effect=error)
    d = make()
    await enqueue(store, clock)
    await step(d)
    (row,) = await rows(store)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, message)
    assert row.next_attempt_at == clock.now + 1


async def test_slow_receiver_hits_the_total_timeout(make: Any, store: Store, clock: Clock) -> None:
    """A receiver that never answers is cut off after WEBHOOK_TIMEOUT_MS and retried."""

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    d = make(hang, settings={"webhook_timeout_ms": 50})
    await enqueue(store, clock)
    await step(d)
    (row,) = await rows(store)
    assert (row.status, row.last_error) == ("pending", "timed out after 50 ms")


async def test_webhook_id_is_stable_and_timestamp_per_attempt(
    make: Any, store: Store, clock: Clock, router: respx.Router
) -> None:
    """Three attempts of one delivery: one webhook-id, each timestamp the attempt's own, all verify."""
    route = router.post(URL).mock(side_effect=[httpx.Response(500), httpx.Response(500), httpx.Response(200)])
    d = make()
    await enqueue(store, clock)
    for _ in range(3):
        await step(d)
        clock.advance(10)
    reqs = [c.request for c in route.calls]
    assert len({r.headers["webhook-id"] for r in reqs}) == 1
    assert [int(r.headers["webhook-timestamp"]) for r in reqs] == [clock.now - 30, clock.now - 20, clock.now - 10]
    for r in reqs:
        clock_ok = abs(int(r.headers["webhook-timestamp"]) - time.time()) < 300
        assert clock_ok
        Webhook(SECRET).verify(r.content, dict(r.headers))
    assert (await rows(store))[0].status == "delivered"


async def test_private_tenant_url_fails_without_sending(
    make: Any, store: Store, clock: Clock, router: respx.Router
) -> None:
    """A tenant URL (check_private) the client refuses as non-public is dead-lettered and never requested."""
    route = router.post(URL).mock(return_value=httpx.Response(200))
    poster = HttpxPoster(router.async_handler, blocked=lambda url: True)
    d = make(http=poster)
    await enqueue(store, clock, check_private=True)
    await step(d)
    (row,) = await rows(store)
    assert row.status == "failed" and row.last_error is not None and row.last_error.startswith("blocked")
    assert route.call_count == 0 and poster.posts == [(URL, True)]


async def test_private_check_is_skipped_when_allowed_or_not_tenant(
    make: Any, store: Store, clock: Clock, router: respx.Router
) -> None:
    """WEBHOOK_ALLOW_PRIVATE, or a URL set by the admin (check_private 0), is sent unguarded."""
    route = router.post(URL).mock(return_value=httpx.Response(200))
    poster = HttpxPoster(router.async_handler, blocked=lambda url: True)
    d = make(http=poster, settings={"webhook_allow_private": True})
    await enqueue(store, clock, check_private=True)
    await enqueue(store, clock, url="http://admin.test/hook")
    router.post("http://admin.test/hook").mock(return_value=httpx.Response(200))
    await step(d)
    assert {r.status for r in await rows(store)} == {"delivered"}
    assert sorted(poster.posts) == [("http://admin.test/hook", False), (URL, False)] and route.call_count == 1


async def test_a_tenant_url_is_posted_guarded(make: Any, store: Store, clock: Clock, router: respx.Router) -> None:
    """A tenant's URL (check_private) goes out guarded; the operator's own (check_private 0) does not."""
    router.post(URL).mock(return_value=httpx.Response(200))
    router.post("http://admin.test/hook").mock(return_value=httpx.Response(200))
    poster = HttpxPoster(router.async_handler)
    d = make(http=poster)
    await enqueue(store, clock, check_private=True)
    await enqueue(store, clock, url="http://admin.test/hook")
    await step(d)
    assert sorted(poster.posts) == [("http://admin.test/hook", False), (URL, True)]


async def test_a_claimed_row_is_never_sent_twice_at_once(make: Any, store: Store, clock: Clock) -> None:
    """Scheduling passes while an attempt is in flight do not start a second one for the same row."""
    release, calls = asyncio.Event(), []

    async def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["webhook-id"])
        await release.wait()
        return httpx.Response(200)

    d = make(slow)
    await enqueue(store, clock)
    await d.deliver_due()
    await until(lambda: calls, what="the first attempt in flight")
    for _ in range(2):
        await d.deliver_due()
        await next_turn()
    assert d.in_flight == 1
    release.set()
    await d.settle()
    await step(d)
    assert len(calls) == 1 and (await rows(store))[0].status == "delivered"


async def test_one_slow_url_does_not_block_others(make: Any, store: Store, clock: Clock) -> None:
    """A receiver that hangs holds only its origin's slots; another origin's deliveries go through meanwhile."""
    release = asyncio.Event()
    fast_done = asyncio.Event()
    slow_seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "slow.test":
            slow_seen.append(request.headers["webhook-id"])
            await release.wait()
        else:
            fast_done.set()
        return httpx.Response(200)

    d = make(handler, origin_limit=2, settings={"webhook_concurrency": 4})
    await enqueue(store, clock, n=20, url="http://slow.test/hook")
    await enqueue(store, clock, n=1, url="http://fast.test/hook")
    await d.deliver_due()
    async with asyncio.timeout(5):
        await fast_done.wait()
    assert len(slow_seen) == 2  # per-origin limit
    release.set()
    await drain(d)
    assert {r.status for r in await rows(store)} == {"delivered"}


async def test_global_limit_bounds_attempts_in_flight(make: Any, store: Store, clock: Clock) -> None:
    """Never more than WEBHOOK_CONCURRENCY attempts at once for one owner (the operator here), across origins."""
    release, peak, now = asyncio.Event(), [0], [0]

    async def handler(request: httpx.Request) -> httpx.Response:
        now[0] += 1
        peak[0] = max(peak[0], now[0])
        await release.wait()
        now[0] -= 1
        return httpx.Response(200)

    d = make(handler, settings={"webhook_concurrency": 3}, origin_limit=3)
    for i in range(4):
        await enqueue(store, clock, n=3, url=f"http://r{i}.test/hook")
    await d.deliver_due()
    await until(lambda: peak[0] == 3, what="three attempts in flight")
    await next_turn()  # a fourth, wrongly started, would be running by now
    assert d.in_flight == 3 and peak[0] == 3
    release.set()
    await drain(d)
    assert peak[0] == 3 and [r.status for r in await rows(store)] == ["delivered"] * 12


async def test_started_dispatcher_is_woken_by_new_rows(store: Store, router: respx.Router) -> None:
    """Running, with nothing pending it waits for a wake (no timer); enqueue + wake → delivered at once."""
    got = asyncio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        got.set()
        return httpx.Response(200)

    router.post(URL).mock(side_effect=handler)
    d = Dispatcher(make_settings(), store, http=HttpxPoster(router.async_handler))
    await d.start()
    try:
        assert await d.deliver_due() is None  # idle: only a wake starts work
        await enqueue(store, Clock())
        d.wake()
        async with asyncio.timeout(5):
            await got.wait()
    finally:
        await d.stop()
    assert (await rows(store))[0].status == "delivered"


async def test_rows_left_pending_by_a_previous_run_go_out_on_start(store: Store, router: respx.Router) -> None:
    """Pending rows already in the outbox (a crash, a restart) are delivered when a dispatcher starts, unwoken."""
    route = router.post(URL).mock(return_value=httpx.Response(200))
    await enqueue(store, Clock(), n=3)
    d = Dispatcher(make_settings(), store, http=HttpxPoster(router.async_handler))
    await d.start()
    try:
        await until(lambda: route.call_count >= 3, 5, "three deliveries")
    finally:
        await d.stop()
    assert [r.status for r in await rows(store)] == ["delivered"] * 3


async def test_stop_waits_briefly_then_cancels_leaving_rows_pending(store: Store, clock: Clock) -> None:
    """stop(): a finished attempt is recorded; one still hanging after the grace period is cancelled and stays pending."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "hang.test":
            await asyncio.Event().wait()
        return httpx.Response(200)

    d = Dispatcher(make_settings(), store, http=HttpxPoster(handler), clock=clock)
    await enqueue(store, clock, url="http://hang.test/hook")
    await enqueue(store, clock, url="http://ok.test/hook")
    await d.deliver_due()
    started = time.monotonic()
    await d.stop(grace_s=0.2)
    assert time.monotonic() - started < 2
    by_url = {r.url: r for r in await rows(store)}
    assert by_url["http://ok.test/hook"].status == "delivered"
    hung = by_url["http://hang.test/hook"]
    assert (hung.status, hung.attempts) == ("pending", 0)
    assert d.stopped


async def test_prune_removes_old_delivered_rows_only(
    make: Any, store: Store, clock: Clock, router: respx.Router
) -> None:
    """Delivered rows older than WEBHOOK_RETENTION_HOURS go; recent ones, pending and failed rows stay."""
    router.post(URL).mock(return_value=httpx.Response(200))
    router.post("http://down.test/hook").mock(return_value=httpx.Response(500))
    d = make(settings={"webhook_retention_hours": 24, "webhook_max_attempts": 1})
    await enqueue(store, clock, n=2)
    await enqueue(store, clock, url="http://down.test/hook")
    await step(d)
    clock.advance(12 * 3600)
    await enqueue(store, clock, n=1, event="contacts.new")
    await step(d)
    assert await d.prune() == 0
    clock.advance(13 * 3600)  # the first two are 25 h old, the third 13 h
    assert await d.prune() == 2
    left = await rows(store)
    assert sorted((r.status, r.event) for r in left) == [("delivered", "contacts.new"), ("failed", "message.received")]


async def test_an_open_read_snapshot_elsewhere_does_not_cause_resends(
    make: Any, store: Store, clock: Clock, router: respx.Router
) -> None:
    """While another task streams from the shared reader (an old snapshot), delivered rows are not sent again."""
    route = router.post(URL).mock(return_value=httpx.Response(200))
    await enqueue(store, clock, n=3)
    export = store.db.iterate("SELECT id FROM outbox", batch=1)
    await anext(export)  # the reader now holds a snapshot in which every row is pending
    d = make()
    for _ in range(3):
        await step(d)
    await export.aclose()
    assert route.call_count == 3
    assert [r.status for r in await rows(store)] == ["delivered"] * 3
