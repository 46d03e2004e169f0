"""The dispatcher: delivers due outbox rows, signed, with retries and a dead letter.

The :class:`Dispatcher` is woken after each commit of the event pump and
delivers due rows. Delivery is at least once: a row is ``pending`` until a
2xx answer is recorded. Failures (non-2xx incl. 3xx, timeout, refused
connection, a response cut short) are retried on the schedule of :mod:`gateway.webhooks.schedule`.
After ``WEBHOOK_MAX_ATTEMPTS`` attempts the row is ``failed`` (dead letter)
until ``POST /webhooks/deliveries/{id}/retry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from gateway.net import Blocked, ConnectFailed, InvalidUrl, NetError, Reply
from gateway.net.client import USER_AGENT
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.outbox import AttemptResult, OutboxRow
from gateway.webhooks.fairness import FairQueue, Lane
from gateway.webhooks.keys import TARGET_ACCOUNT, TARGET_DEVICE, SigningKeys
from gateway.webhooks.retention import Retention
from gateway.webhooks.schedule import backoff_s, retry_after_s

log = structlog.get_logger("gateway.webhooks")

SHUTDOWN_GRACE_S = 3.0
LOAD_BATCH = 2000  # new outbox rows read per pass
# Cluster mode: finished attempts' results are stored this many at a time, or after this long at most.
RECORD_BATCH = 32
RECORD_DELAY_S = 0.02
BASE_HEADERS = {  # CONTRACT §6's headers on every attempt (the client would add the same UA, but the contract is here)
    "User-Agent": USER_AGENT,
    "Content-Type": "application/json",
    "Accept": "*/*",
    "Accept-Encoding": "identity",
}


class Poster(Protocol):
    """How an attempt goes out: :class:`gateway.net.GuardedClient` (tests pass a fake).

    ``post`` returns a complete answer within ``timeout_s``, or raises ``TimeoutError`` or a
    :class:`gateway.net.NetError` (:class:`~gateway.net.Blocked` when a ``guarded`` URL's host
    is, or resolves only to, non-public addresses).
    """

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, guarded: bool, timeout_s: float
    ) -> Reply: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: ``ok``, else why not and what the receiver asked."""

    ok: bool
    error: str | None = None
    retry_after: float | None = None
    final: bool = False  # no point retrying (blocked URL)


# --- the dispatcher ------------------------------------------------------------------------


class Dispatcher:
    """Delivers due outbox rows through one shared :class:`Poster` (the gateway's guarded client).

    One scheduling task claims due rows (an in-memory claim set: one process
    owns the outbox) and starts one task per attempt, in the fair order and
    within the limits of :class:`~gateway.webhooks.fairness.FairQueue`
    (``webhook_concurrency`` in all, ``origin_limit`` per account and target
    origin), so a slow receiver holds only its owner's slots. Finished attempts are recorded in
    batches; a row stays claimed until its result is stored, so it is never
    sent twice at once. :meth:`wake` (called by the event pump after each
    commit) runs the scheduler at once; when idle it sleeps until the earliest
    ``next_attempt_at``.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        http: Poster,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        origin_limit: int | None = None,
        prune_interval_s: float = 600.0,
        keys: SigningKeys | None = None,
        claim_as: str | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.rand = rand
        self.http = http  # owned by the composition root: not closed here
        self.limit = settings.webhook_concurrency
        self.queue = FairQueue(self.limit, origin_limit or settings.webhook_origin_concurrency)
        self.retention = Retention(settings, store, clock=clock, interval_s=prune_interval_s)
        # Each delivery is signed with its target's secret (gateway.webhooks.keys).
        self.keys = keys or SigningKeys(settings.webhook_secret, clock=clock)
        self.timeout_s = settings.webhook_timeout_ms / 1000
        self.stats: Counter[str] = Counter()  # attempts, delivered, retried, failed
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        # Pending rows not claimed wait in self.queue: one process owns the outbox, so the store is
        # read once at start and then only for rows newer than _last_id.
        self._last_id = 0
        self._claimed: dict[int, Lane] = {}  # id → lane: sending, or finished but not yet recorded
        self._results_since: float | None = None  # cluster: when the oldest unstored result was first seen
        self._held: dict[int, tuple[OutboxRow, float]] = {}  # cluster: claimed, waiting for a slot (row, claim end)
        self._attempts: set[asyncio.Task[None]] = set()
        self._results: list[AttemptResult] = []
        self._scheduler: asyncio.Task[None] | None = None
        self._stopping = False
        self.stopped = False
        # Cluster mode: the outbox is shared, so rows are claimed in the store (FOR UPDATE SKIP LOCKED) under
        # this node's id, for longer than an attempt can take; a dead node's claims run out (or are
        # released when it leaves the live list). Rows other nodes wrote are found by polling.
        self.claim_as = claim_as
        self.poll_s = poll_s
        self.claim_s = self.timeout_s + 30.0

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Start scheduling: rows left pending by a previous run (even a crash) go out now."""
        self._scheduler = asyncio.create_task(self._run(), name="webhook-dispatcher")
        self.retention.start()

    def wake(self) -> None:
        """New rows were committed (or a slot freed): schedule now."""
        self._wake.set()

    async def stop(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Stop taking work, give attempts in flight ``grace_s`` to finish, cancel the rest
        (they stay pending and go out after the next start), record results."""
        self._stopping = True
        self.wake()
        if self._scheduler is not None:  # let a pass in progress finish, rather than cut it mid-write
            with contextlib.suppress(TimeoutError):
                await asyncio.wait({self._scheduler}, timeout=0.5)
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
        await self.retention.stop()
        if self._attempts:
            _, late = await asyncio.wait(set(self._attempts), timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.flush()
        if self.claim_as is not None:  # rows claimed but never attempted go back to the other nodes now
            self._held.clear()
            with contextlib.suppress(Exception):
                await self.store.release_claims(self.claim_as)
        self.stopped = True

    @property
    def in_flight(self) -> int:
        return len(self._attempts)

    # --- scheduling ----------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook.dispatch_failed")
                delay = 1.0  # the store hiccuped; try again shortly
            if self._stopping:
                return
            if delay is not None and delay <= 0:
                await asyncio.sleep(0)  # let attempts run before the next batch
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def deliver_due(self) -> float | None:
        """One scheduling pass: record finished attempts, learn new rows, start attempts for due rows.

        Returns seconds until the scheduler should look again without being
        woken: 0 = at once (more rows to load), None = only when woken.
        """
        if self.claim_as is not None:
            return await self._deliver_claimed(self.claim_as)
        async with self._pass_lock:  # two passes at once could claim the same row
            results, self._results = self._results, []
            try:
                new = await self.store.sync_outbox(results, self._last_id, LOAD_BATCH)
            except BaseException:
                self._results = results + self._results  # still claimed; stored next pass (idempotent)
                raise
            self._release(results)
            loaded = {row.id: row for row in new}
            for row in new:
                self._last_id = max(self._last_id, row.id)
                self.queue.push(self.lane_of(row), row.next_attempt_at, row.id)
            now = self.clock()
            chosen = [] if self._stopping else self.queue.choose(now)
            for row_id, lane in chosen:
                self._claimed[row_id] = lane
            missing = [row_id for row_id, _ in chosen if row_id not in loaded]
            if missing:  # queued in an earlier pass; bodies are not kept in memory
                loaded.update((row.id, row) for row in await self.store.deliveries_by_id(missing))
            for row_id, lane in chosen:
                claimed = loaded.get(row_id)
                if claimed is None:  # gone from the store meanwhile
                    self._claimed.pop(row_id, None)
                    self.queue.done(lane)
                    continue
                self._start_attempt(claimed, lane)
            if len(new) == LOAD_BATCH:
                return 0
            return self.queue.next_due(now)

    async def _deliver_claimed(self, holder: str) -> float | None:
        """A pass in cluster mode: record finished attempts (which ends their claims), claim due rows up to
        the concurrency (in flight + waiting here), start what the fair queue allows.

        Rows claimed but not startable yet (their lane is full) wait here, still claimed, for the next
        slot: handing them back at once made every pass claim a full batch and return most of it — two
        round trips to PostgreSQL for a few starts. A waiting row whose claim would run out before an
        attempt could finish is handed back first, so no other node ever takes a row this one still
        means to send."""
        async with self._pass_lock:
            now = self.clock()
            # Results are stored in batches (a round trip each): a finished attempt frees its lane at
            # once, and the next waiting row starts without waiting for the database.
            wait_s = self._record_due(now)
            if wait_s is None:
                results, self._results = self._results, []
                try:
                    await self.store.record_attempts(results)
                except BaseException:
                    self._results = results + self._results
                    raise
                self._release(results)
                self._results_since = None
            if self._stopping:
                return self.poll_s
            await self._release_expiring(holder, now)
            want = self.limit - len(self._claimed) - len(self._held)
            if want >= max(1, self.limit // 4) or (want > 0 and not self._held):  # a batch, not a trickle
                until = now + self.claim_s
                for row in await self.store.claim_deliveries(holder, now, until, want):
                    self._held[row.id] = (row, until)
                    self.queue.push(self.lane_of(row), row.next_attempt_at, row.id)
            for row_id, lane in self.queue.choose(now):
                row, _ = self._held.pop(row_id)
                self._claimed[row_id] = lane
                self._start_attempt(row, lane)
            # finished attempts wake the next pass; the poll finds other nodes' rows
            return self.poll_s if wait_s is None else min(self.poll_s, wait_s)

    def _record_due(self, now: float) -> float | None:
        """None when the finished attempts' results should be stored now (a batch's worth, or the oldest
        has waited :data:`RECORD_DELAY_S`, or stopping); else seconds until they should."""
        if not self._results or self._stopping or len(self._results) >= RECORD_BATCH:
            return None
        if self._results_since is None:
            self._results_since = now
        left = self._results_since + RECORD_DELAY_S - now
        return None if left <= 0 else left

    async def _release_expiring(self, holder: str, now: float) -> None:
        """Hand back waiting rows whose claim ends before an attempt started now could finish."""
        margin = self.timeout_s + 5.0
        if not any(until - now < margin for _, until in self._held.values()):
            return
        back: list[int] = []
        for row_id in self.queue.drain():
            row, until = self._held[row_id]
            if until - now < margin:
                back.append(row_id)
                del self._held[row_id]
            else:
                self.queue.push(self.lane_of(row), row.next_attempt_at, row_id)
        await self.store.release_claimed(holder, back)

    def lane_of(self, row: OutboxRow) -> Lane:
        """The row's lane: its owner (the account of a tenant's target, else the operator) and origin."""
        owner = row.owner_id if row.target in (TARGET_DEVICE, TARGET_ACCOUNT) else None
        return self.queue.lane(owner, row.url)

    def requeue(self, row: OutboxRow, due: float) -> None:
        """A delivery put back in the queue by hand (``POST …/retry``)."""
        if row.id not in self._claimed and self.claim_as is None:
            self.queue.push(self.lane_of(row), due, row.id)
        self.wake()

    def _start_attempt(self, row: OutboxRow, lane: Lane) -> None:
        task = asyncio.create_task(self._attempt(row, lane), name=f"webhook-{row.id}")
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    async def flush(self) -> None:
        """Store the results of finished attempts and release their claims."""
        async with self._pass_lock:
            if not self._results:
                return
            results, self._results = self._results, []
            try:
                await self.store.record_attempts(results)
            except BaseException:  # incl. cancellation: keep them claimed, store them next time (idempotent)
                self._results = results + self._results
                raise
            self._release(results)
            self._results_since = None

    def _release(self, results: list[AttemptResult]) -> None:
        """Stored results give up their claims; a row still pending goes back in its lane."""
        for r in results:
            lane = self._claimed.pop(r.id)
            if r.status == "pending" and self.claim_as is None:  # (claimed: any node takes it when due)
                self.queue.push(lane, r.next_attempt_at, r.id)

    async def settle(self) -> None:
        """Wait for every attempt in flight and record the results (tests, shutdown)."""
        while self._attempts:
            await asyncio.gather(*list(self._attempts), return_exceptions=True)
        await self.flush()

    # --- one attempt -------------------------------------------------------------------

    async def _attempt(self, row: OutboxRow, lane: Lane) -> None:
        recorded = False
        try:
            try:
                result = self.result_of(row, await self.send(row))
            except Exception as exc:  # a bug, not the receiver: back off rather than spin
                log.exception("webhook.attempt_crashed", id=row.id)
                retry_at = self.clock() + self.settings.webhook_retry_base_ms / 1000
                result = AttemptResult(row.id, "pending", row.attempts + 1, f"internal error: {exc!r}", retry_at, None)
            self._results.append(result)
            recorded = True
        finally:
            self.queue.done(lane)
            if not recorded:  # cancelled: stays pending, unsent as far as we know
                self._claimed.pop(row.id, None)
                if self.claim_as is None:  # (a claimed row's claim runs out; stop() gives it back sooner)
                    self.queue.push(lane, row.next_attempt_at, row.id)
            self.wake()

    async def send(self, row: OutboxRow) -> Outcome:
        """POST the row's body once, signed for this attempt; never raises for delivery errors.

        A tenant's URL (``check_private``) goes out guarded unless WEBHOOK_ALLOW_PRIVATE: the client
        connects only to a public address it checked itself (see :mod:`gateway.net`). Only a complete
        2xx answer is delivered; a 3xx is not followed and counts as its status.
        """
        self.stats["attempts"] += 1
        headers = dict(BASE_HEADERS)
        headers.update(
            self.keys.headers(row.target, row.owner_id, row.token, row.webhook_id, int(self.clock()), row.body)
        )
        guarded = row.check_private and not self.settings.webhook_allow_private
        try:
            reply = await self.http.post(row.url, row.body, headers, guarded=guarded, timeout_s=self.timeout_s)
        except TimeoutError:
            return Outcome(False, f"timed out after {self.settings.webhook_timeout_ms} ms")
        except Blocked as exc:
            return Outcome(False, f"blocked: {exc}", final=True)
        except InvalidUrl as exc:  # stored before today's set-time checks, or edited in the database
            return Outcome(False, f"invalid URL: {exc}", final=True)
        except ConnectFailed as exc:
            return Outcome(False, f"connection failed: {exc}")
        except NetError as exc:
            return Outcome(False, str(exc))
        status = reply.status
        if 200 <= status < 300:
            return Outcome(True)
        error = f"HTTP {status}"
        if 300 <= status < 400:
            error += " (redirects are not followed)"
        return Outcome(False, error, retry_after_s(reply.headers.get("retry-after"), self.clock()))

    def result_of(self, row: OutboxRow, outcome: Outcome) -> AttemptResult:
        """The row's next state after ``outcome``: delivered, pending with a retry time, or failed."""
        now = self.clock()
        attempts = row.attempts + 1
        s = self.settings
        if outcome.ok:
            self.stats["delivered"] += 1
            log.info("webhook.delivered", id=row.id, hook=row.event, attempts=attempts)
            return AttemptResult(
                row.id, "delivered", attempts, row.last_error, now, now
            )  # keep why earlier tries failed
        if outcome.final or attempts >= s.webhook_max_attempts:
            self.stats["failed"] += 1
            log.warning("webhook.failed", id=row.id, hook=row.event, attempts=attempts, error=outcome.error)
            return AttemptResult(row.id, "failed", attempts, outcome.error, now, None)
        delay = backoff_s(attempts, s.webhook_retry_base_ms, s.webhook_retry_max_ms, self.rand)
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, s.webhook_retry_max_ms / 1000))
        self.stats["retried"] += 1
        log.info(
            "webhook.retry", id=row.id, hook=row.event, attempts=attempts, error=outcome.error, delay_s=round(delay, 3)
        )
        return AttemptResult(row.id, "pending", attempts, outcome.error, now + delay, None)

    # --- retention ---------------------------------------------------------------------

    async def prune(self) -> int:
        """Delete delivered rows older than ``WEBHOOK_RETENTION_HOURS`` (see :class:`Retention`)."""
        return await self.retention.prune()
