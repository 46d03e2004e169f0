"""The campaigns service (CONTRACT §13): create, read, pause/resume/cancel, run, report progress.

Routes stay thin: they parse and check the request, then call these. Every
campaign belongs to the account that created it (the admin's have no owner):
another account's campaign is ``NOT_FOUND``, exactly as one that does not
exist. Each active campaign has a :class:`~gateway.campaigns.runner.Worker`;
every status change is stored with its ``campaign`` webhook rows in one
transaction, then told to WebSocket listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from typing import Any

import orjson
import structlog

from gateway.api.errors import ApiError, invalid
from gateway.campaigns.clock import Clock
from gateway.campaigns.content import Content
from gateway.campaigns.model import FINAL, event_data, pace_from_json, view
from gateway.campaigns.pacer import DevicePacer
from gateway.campaigns.pacing import Pace, eta
from gateway.campaigns.progress import Throttle
from gateway.campaigns.recipients import Recipients
from gateway.campaigns.runner import Worker
from gateway.campaigns.template import check_known
from gateway.devices import DeviceManager
from gateway.events import Hub
from gateway.media.service import MediaService
from gateway.phones import PhoneCache
from gateway.store import DeviceRow, Store
from gateway.store.campaigns import (
    ACTIVE,
    CREATING,
    CampaignRow,
    apply_receipts_sync,
    created_sync,
    drop_campaign_sync,
    fetch_campaign_sync,
    insert_campaign_sync,
    insert_recipients_sync,
    set_status_sync,
)
from gateway.store.conn import Conn
from gateway.store.outbox import enqueue_sync
from gateway.webhooks.routing import WebhookRouter

log = structlog.get_logger("gateway.campaigns")

STOP_GRACE_S = 5.0


def new_campaign_id() -> str:
    return f"cmp_{secrets.token_hex(12)}"


class Campaigns:
    def __init__(
        self,
        store: Store,
        devices: DeviceManager,
        hub: Hub,
        router: WebhookRouter,
        media: MediaService | None,
        phone_cache: PhoneCache,
        clock: Clock,
        wake_dispatcher: Callable[[], None] = lambda: None,
        progress_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.devices = devices
        self.hub = hub
        self.router = router
        self.media = media
        self.phone_cache = phone_cache
        self.clock = clock
        self.wake_dispatcher = wake_dispatcher
        self.pacer = DevicePacer(clock)
        self.progress = Throttle(self._emit_progress, progress_clock)
        self.workers: dict[str, Worker] = {}
        self.stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        # A cluster's invalidations (gateway.cluster.invalidate): told of every status change made here,
        # so a worker that runs on another node (its device's) follows a pause, resume or cancel.
        self.changed: Callable[[str, dict[str, Any]], None] | None = None
        self._tokens: set[str] = set()  # devices with campaigns (receipts of the others are not looked up)

    # --- lifecycle of the service ------------------------------------------------------------

    async def start(self) -> None:
        """Pick up every campaign that was active when the gateway stopped (or was killed)."""
        self._tokens = await self.store.campaign_tokens()
        self.devices.receipt_listeners.append(self)
        dropped = await self.store.drop_unfinished_creates()
        if dropped:
            log.warning("campaigns.unfinished_creates_dropped", count=dropped)
        for row in await self.store.active_campaigns():
            if self._here(row.token):
                self._spawn(row)
        log.info("campaigns.resumed", count=len(self.workers))

    def _here(self, token: str) -> bool:
        """A campaign's worker runs on the node that runs its device (every device is here on one node)."""
        return self.devices.placement is None or self.devices.get(token) is not None

    # --- a cluster's device ownership (an OwnershipListener, registered after the device manager) --------

    async def on_acquired(self, token: str) -> None:
        """The device came to this node (restored already): its active campaigns resume here."""
        for row in await self.store.active_campaigns():
            if row.token == token:
                self._spawn(row)

    async def on_released(self, token: str) -> None:
        """The device leaves this node: stop its campaigns' workers now — nothing is marked, each recipient's
        send is idempotent, so the next owner resumes where they stopped."""
        workers = [w for w in self.workers.values() if w.token == token]
        for w in workers:
            if w.task is not None:
                w.task.cancel()
        for w in workers:
            if w.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w.task
            self.worker_done(w)

    async def stop(self) -> None:
        """Let in-flight sends finish (bounded), then stop every worker; nothing is marked or lost."""
        self.stopping = True
        for w in list(self.workers.values()):
            w.poke()
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for t in late:
                t.cancel()
            for t in late:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        self.progress.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
        with contextlib.suppress(ValueError):
            self.devices.receipt_listeners.remove(self)

    def _spawn(self, row: CampaignRow) -> None:
        if row.id in self.workers or self.stopping or not self._here(row.token):
            return
        worker = Worker(self, row)
        self.workers[row.id] = worker
        worker.start()

    def worker_done(self, worker: Worker) -> None:
        if self.workers.get(worker.id) is worker:
            del self.workers[worker.id]

    def pace_of(self, row: CampaignRow) -> Pace:
        return pace_from_json(row.pace)

    # --- create --------------------------------------------------------------------------------

    async def create(
        self,
        *,
        owner_id: int | None,
        token: str,
        name: str,
        content: Content,
        recipients: Recipients,
        pace: Pace,
        validate: bool,
        start_at: float | None,
    ) -> dict[str, Any]:
        """Store the campaign and its recipients, then start it.

        The recipients go in chunks as they are read (each chunk its own write, so a 100,000-row CSV
        neither sits in memory nor holds the writer for the other devices' events), under a campaign
        row that says ``creating``: invisible to every reader, and removed at the next start if the
        gateway dies meanwhile. The last write gives the row its counts and its status, with its
        ``campaign`` webhooks, in one job. A source that fails half-way (a bad CSV line) or turns out
        empty leaves nothing behind."""
        try:
            check_known(content.templates(), recipients.columns)
        except BaseException:
            await recipients.aclose()
            raise
        now = self.clock.now()
        scheduled = start_at is not None and start_at > now
        row = CampaignRow(
            id=new_campaign_id(),
            owner_id=owner_id,
            token=token,
            name=name,
            message=content.to_json(),
            pace=orjson.dumps(pace.to_json()).decode(),
            validate=validate,
            status=CREATING,
            error=None,
            total=0,
            pending=0,
            sent=0,
            delivered=0,
            read=0,
            failed=0,
            skipped=0,
            created_at=now,
            start_at=start_at,
            started_at=None,
            finished_at=None,
        )
        db, cid = self.store.db, row.id
        self._tokens.add(token)  # before the first send, so its receipts are followed
        await db.run(lambda conn: insert_campaign_sync(conn, row))
        try:
            async for chunk in recipients.chunks():
                await db.run(lambda conn, c=chunk: insert_recipients_sync(conn, cid, token, c))  # type: ignore[misc]
            if recipients.total == 0:
                raise invalid("the campaign has no recipients")
        except BaseException:
            await asyncio.shield(db.run(lambda conn: drop_campaign_sync(conn, cid)))
            raise
        finally:
            await recipients.aclose()
        row.total, row.pending, row.skipped = recipients.total, recipients.pending, recipients.skipped
        if row.pending == 0:
            row.status, row.finished_at = "completed", now
        elif scheduled:
            row.status = "scheduled"
        else:
            row.status, row.started_at = "running", now

        def created(conn: Conn) -> None:
            created_sync(conn, row)
            self._enqueue_event(conn, row)

        await db.run(created)
        self.wake_dispatcher()
        self._publish(row)
        self.progress.told(row.id)
        if row.status not in FINAL:
            self._spawn(row)
        return self.view(row)

    # --- read ----------------------------------------------------------------------------------

    async def get(self, campaign_id: str, owner_id: int | None, is_admin: bool) -> CampaignRow:
        row = await self.store.get_campaign(campaign_id) if len(campaign_id) <= 64 else None
        if row is None or row.status == CREATING or not (is_admin or row.owner_id == owner_id):
            raise ApiError("NOT_FOUND", f"no campaign {campaign_id}")
        return row

    async def listing(self, owner_id: int | None, is_admin: bool, limit: int) -> list[dict[str, Any]]:
        return [self.view(r) for r in await self.store.list_campaigns(owner_id, is_admin, limit)]

    def view(self, row: CampaignRow) -> dict[str, Any]:
        return view(row, self.eta_at(row))

    def eta_at(self, row: CampaignRow) -> float | None:
        """When the campaign should be done at its pace (null when paused or finished: no honest answer)."""
        if row.status not in ("running", "scheduled"):
            return None
        pace = self.pace_of(row)
        now = self.clock.now()
        start = max(now, row.start_at or now)
        worker = self.workers.get(row.id)
        if worker is not None and row.status == "running":
            start = max(start, self.pacer.due(row.token, worker.pace))
        share = sum(1 for w in self.workers.values() if w.token == row.token and w.status == "running")
        sent_today = worker.sent_today(now) if worker is not None else 0
        sent_before = worker.pace.sent if worker is not None else 0
        return eta(pace, row.pending, start, sent_today, max(1, share), sent_before)

    async def recipients_csv(self, row: CampaignRow, status: str | None) -> AsyncIterator[list[Any]]:
        return self.store.iter_recipient_tuples(row.id, status)

    # --- actions -------------------------------------------------------------------------------

    async def pause(self, row: CampaignRow) -> dict[str, Any]:
        if row.status == "paused":
            return self.view(row)
        if not await self.transition(row.id, "paused", only_from=("scheduled", "running")):
            raise invalid(f"a {row.status} campaign cannot be paused")
        return self.view(await self._reload(row.id))

    async def resume(self, row: CampaignRow) -> dict[str, Any]:
        if row.status in ("running", "scheduled"):
            return self.view(row)
        if row.status != "paused":
            raise invalid(f"a {row.status} campaign cannot be resumed")
        target = "scheduled" if row.start_at is not None and row.started_at is None else "running"
        await self.transition(row.id, target, only_from=("paused",))
        fresh = await self._reload(row.id)
        self._spawn(fresh)
        return self.view(fresh)

    async def cancel(self, row: CampaignRow) -> dict[str, Any]:
        if row.status == "cancelled":
            return self.view(row)
        if not await self.transition(row.id, "cancelled"):
            raise invalid(f"a {row.status} campaign cannot be cancelled")
        return self.view(await self._reload(row.id))

    async def _reload(self, campaign_id: str) -> CampaignRow:
        row = await self.store.get_campaign(campaign_id)
        assert row is not None
        return row

    async def transition(
        self, campaign_id: str, status: str, error: str | None = None, only_from: Iterable[str] = ACTIVE
    ) -> bool:
        """Move the campaign to ``status`` (if it is in ``only_from``), with its ``campaign`` webhooks in
        the same transaction; then tell listeners and the worker."""
        at = self.clock.now()
        allowed = tuple(only_from)

        def job(conn: Conn) -> CampaignRow | None:
            if not set_status_sync(conn, campaign_id, status, at, error, allowed):
                return None
            row = fetch_campaign_sync(conn, campaign_id)
            if row is not None:
                self._enqueue_event(conn, row)
            return row

        row = await self.store.db.run(job)
        if row is None:
            return False
        self.wake_dispatcher()
        self._publish(row)
        self.progress.told(campaign_id)
        worker = self.workers.get(campaign_id)
        if worker is not None:
            worker.status = status
            worker.poke()
        if self.changed is not None:
            self.changed("campaign", {"id": campaign_id, "status": status})
        log.info("campaign.status", id=campaign_id, status=status, error=error)
        return True

    def status_changed_elsewhere(self, campaign_id: str, status: str) -> None:
        """Paused, resumed or cancelled through another node of the cluster: the worker follows if it runs
        here; a campaign resumed elsewhere whose device is here gets its worker here."""
        worker = self.workers.get(campaign_id)
        if worker is not None:
            worker.status = status
            worker.poke()
        elif status in ("running", "scheduled"):
            task = asyncio.create_task(self._resume_here(campaign_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _resume_here(self, campaign_id: str) -> None:
        row = await self.store.get_campaign(campaign_id)
        if row is not None and row.status in ("running", "scheduled"):
            self._spawn(row)

    # --- events --------------------------------------------------------------------------------

    def _device_row(self, row: CampaignRow) -> DeviceRow:
        device = self.devices.get(row.token)
        if device is not None:
            return replace(device.row)
        return DeviceRow(token=row.token, status="logged_out", created_at="", last_update="", owner_id=row.owner_id)

    def _enqueue_event(self, conn: Conn, row: CampaignRow) -> None:
        deliveries = self.router.deliveries("campaign", self._device_row(row), event_data(row))
        if deliveries:
            enqueue_sync(conn, deliveries)

    def _publish(self, row: CampaignRow) -> None:
        self.hub.publish("campaign", row.token, event_data(row), None, row.owner_id)

    def _emit_progress(self, campaign_id: str) -> None:
        task = asyncio.create_task(self._progress_event(campaign_id), name=f"campaign-progress-{campaign_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _progress_event(self, campaign_id: str) -> None:
        try:
            row = await self.store.get_campaign(campaign_id)
            if row is None:
                return
            deliveries = self.router.deliveries("campaign", self._device_row(row), event_data(row))
            if deliveries:
                await self.store.enqueue(deliveries)
                self.wake_dispatcher()
            self._publish(row)
        except Exception:
            log.exception("campaign.progress_failed", id=campaign_id)

    # --- receipts (a ReceiptListener of the device manager) ---------------------------------------

    def listens_to(self, token: str) -> bool:
        return token in self._tokens

    def in_transaction(self, conn: Conn, token: str, ids: tuple[str, ...], status: str, at: float) -> object:
        return apply_receipts_sync(conn, token, ids, status, at)

    def committed(self, result: object) -> None:
        if isinstance(result, set):
            for campaign_id in result:
                self.progress.changed(campaign_id)
