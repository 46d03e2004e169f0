"""One campaign's sending loop: durable, paced, and safe to kill at any line.

The loop takes the next recipients in the order given and, for each one:

1. (``validate``) asks whether the number is on WhatsApp, through the phone
   cache; an answer the cache does not have waits for a turn on the device's
   checks lane (:data:`~gateway.campaigns.pacer.CHECKS`: paced like the sends,
   so a list of fresh numbers is never a burst of checks); a number that is
   not on WhatsApp is ``skipped``;

then, in its turn on the device's sends lane
(:class:`~gateway.campaigns.pacer.DevicePacer`):

2. records the recipient ``sending`` with a fresh message id, and commits;
3. sends the message under that id;
4. records it ``sent`` (or ``failed`` with the error), and commits.

A recipient found ``sending`` at start-up was interrupted between 2 and 4. On
a driver that keeps chosen ids (the sandbox; WhatsApp keeps one message per
id), it is sent again under the same id, which cannot make a second message.
On a driver that cannot choose ids (neonize 0.5.2) it is not resent, so it
cannot arrive twice: it is marked ``failed`` with the reason — never skipped
silently; a later receipt for it still moves it to ``delivered``/``read``.

The device being down pauses the loop (nothing is taken from the list) until
it is connected again; a logged-out or deleted device fails the campaign.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import orjson
import structlog

from gateway.api.errors import ApiError
from gateway.campaigns.content import Builder, Content, FailedContent
from gateway.campaigns.pacer import CHECKS, CampaignPace
from gateway.campaigns.pacing import day_bounds, quiet_until
from gateway.devices import Device
from gateway.ids import message_id as new_message_id
from gateway.store.campaigns import (
    CampaignRow,
    RecipientRow,
    mark_done_sync,
    mark_sending_sync,
    mark_sent_sync,
    unmark_sending_sync,
)
from gateway.validation import validate

if TYPE_CHECKING:
    from gateway.campaigns.service import Campaigns

log = structlog.get_logger("gateway.campaigns")

BATCH = 200
DEVICE_WAIT_S = 5.0  # how long one wait for a device to come back lasts before the loop looks again
INTERRUPTED = (
    "interrupted: the gateway stopped between sending and recording this message, and this driver "
    "cannot resend under the same id; not resent, so it cannot arrive twice"
)


class Worker:
    """Sends one campaign; owned by :class:`~gateway.campaigns.service.Campaigns`."""

    def __init__(self, svc: Campaigns, row: CampaignRow) -> None:
        self.svc = svc
        self.id = row.id
        self.token = row.token
        self.owner_id = row.owner_id
        self.status = row.status
        self.start_at = row.start_at
        self.validate = row.validate
        self.pace = CampaignPace(svc.pace_of(row))
        self.check_pace = CampaignPace(self.pace.pace)  # its own warm-up, gaps and rolling minute
        self._checked: int | None = None  # the recipient (seq) found on WhatsApp, still to send
        self.content = Content.from_json(row.message)
        self.builder = Builder(self.content, svc.media, row.owner_id)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._queue: list[RecipientRow] = []
        self._day: tuple[float, float] = (0.0, 0.0)
        self._sent_today = 0

    def sent_today(self, now: float) -> int:
        """Sends counted against today's cap (0 when the cap's day is not today or there is no cap)."""
        return self._sent_today if self._day[0] <= now < self._day[1] else 0

    def start(self) -> None:
        self.task = asyncio.create_task(self._main(), name=f"campaign-{self.id}")

    def poke(self) -> None:
        """Something changed (status, a device came back, shutdown): look again now."""
        self.wake.set()

    async def _main(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("campaign.failed", id=self.id)
            await self.svc.transition(self.id, "failed", f"internal error: {type(exc).__name__}")
        finally:
            self.svc.worker_done(self)

    async def _run(self) -> None:
        svc, clock = self.svc, self.svc.clock
        while not svc.stopping:
            self.wake.clear()
            if self.status in ("completed", "cancelled", "failed"):
                return
            if self.status == "paused":
                await self.wake.wait()
                continue
            if self.status == "scheduled":
                start = self.start_at or 0.0
                if clock.now() < start:
                    await clock.sleep(start - clock.now(), self.wake)
                    continue
                await svc.transition(self.id, "running", only_from=("scheduled",))
                continue
            device = svc.devices.get(self.token)
            if device is None:
                await svc.transition(self.id, "failed", "the device was deleted")
                return
            if device.status == "logged_out":
                reason = device.last_error or "Logged out"
                await svc.transition(self.id, "failed", f"the device was logged out ({reason})")
                return
            if device.status != "connected":
                await self._device_back(device)
                continue
            if await self._wait_for_window():
                continue
            if not self._queue:
                self._queue = await svc.store.next_recipients(self.id, BATCH)
                if not self._queue:
                    await svc.transition(self.id, "completed", only_from=("running",))
                    return
            r = self._queue[0]
            if self.validate and r.status == "pending" and self._checked != r.seq:
                await self._check(device, r)
                continue  # look again (status, device, window) before the send's turn
            async with svc.pacer.turn(self.token, self.pace, self.wake) as turn:
                if not turn.ready or self.status != "running" or svc.stopping:
                    continue
                if device.status != "connected":
                    continue
                turn.at = await self._one(device, r)
                turn.used = turn.at is not None

    async def _check(self, device: Device, r: RecipientRow) -> None:
        """Is ``r`` on WhatsApp: from the phone cache, else in a turn of the device's checks lane.
        Found: remembered for the send; not found: ``skipped``; an error: ``failed``; not asked (woken,
        the device went down): nothing changes, the loop looks again."""
        svc = self.svc
        if svc.phone_cache.get(r.phone) is None:
            async with svc.pacer.turn(self.token, self.check_pace, self.wake, CHECKS) as turn:
                if not turn.ready or self.status != "running" or svc.stopping or device.status != "connected":
                    return
                turn.used = True
                on_whatsapp = await self._ask(device, r)
        else:
            on_whatsapp = await self._ask(device, r)
        if on_whatsapp:
            self._checked = r.seq
        elif on_whatsapp is False:
            await self._finish(r.seq, "skipped", "not_on_whatsapp")

    async def _ask(self, device: Device, r: RecipientRow) -> bool | None:
        try:
            answer, _ = await validate(self.svc.phone_cache, device, r.phone)
        except ApiError as exc:
            if exc.code == "DEVICE_NOT_CONNECTED":
                return None  # the loop waits for the device; the recipient stays next
            await self._finish(r.seq, "failed", exc.message)
            return None
        return answer.is_on_whatsapp

    async def _device_back(self, device: Device) -> None:
        """Wait (bounded) for the device to be connected or logged out, or for a poke."""
        waiter = asyncio.ensure_future(device.wait_for_status("connected", "logged_out", timeout=DEVICE_WAIT_S))
        poked = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({waiter, poked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (waiter, poked):
                f.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await f

    async def _wait_for_window(self) -> bool:
        """Quiet hours or the daily cap: wait until sending may go on. True when it waited."""
        clock, pace = self.svc.clock, self.pace.pace
        now = clock.now()
        until = quiet_until(pace.quiet, now)
        if until is not None:
            await clock.sleep(until - now, self.wake)
            return True
        if pace.daily_cap is not None:
            if not self._day[0] <= now < self._day[1]:
                self._day = day_bounds(pace, now)
                self._sent_today = await self.svc.store.sent_since(self.id, self._day[0])
            if self._sent_today >= pace.daily_cap:
                await clock.sleep(self._day[1] - now, self.wake)
                return True
        return False

    async def _one(self, device: Device, r: RecipientRow) -> float | None:
        """Send to one recipient (checked already, if the campaign validates). Returns when WhatsApp took
        the message (or refused it: the turn was used), None when it was not asked."""
        svc, db = self.svc, self.svc.store.db
        cid, seq = self.id, r.seq
        if r.status == "sending" and not device.driver.keeps_message_ids:
            await self._finish(seq, "failed", INTERRUPTED)
            return None
        if r.status == "sending":
            msg_id = r.message_id or new_message_id()
        else:
            msg_id = new_message_id()
            at = svc.clock.now()
            await db.run(lambda conn: mark_sending_sync(conn, cid, seq, msg_id, at))
        values = _values(r)
        try:
            message = await self.builder.build(values, msg_id)
        except FailedContent as exc:
            if r.status == "pending":
                await db.run(lambda conn: unmark_sending_sync(conn, cid, seq))
            await svc.transition(self.id, "failed", str(exc))
            return None
        try:
            sent = await device.send(f"{r.phone}@s.whatsapp.net", message)
        except ApiError as exc:
            if exc.code == "DEVICE_NOT_CONNECTED":
                # Refused before it reached WhatsApp: still to send. (A resend keeps its id and its row.)
                if r.status == "pending":
                    await db.run(lambda conn: unmark_sending_sync(conn, cid, seq))
                return None
            refused = svc.clock.now()
            await self._finish(seq, "failed", exc.message)
            return refused
        at = svc.clock.now()
        await db.run(lambda conn: mark_sent_sync(conn, cid, seq, sent.id, at))
        self._queue.pop(0)
        self._sent_today += 1
        svc.progress.changed(cid)
        return at

    async def _finish(self, seq: int, status: str, reason: str) -> None:
        cid, at = self.id, self.svc.clock.now()
        await self.svc.store.db.run(lambda conn: mark_done_sync(conn, cid, seq, status, reason, at))
        if self._queue and self._queue[0].seq == seq:
            self._queue.pop(0)
        self.svc.progress.changed(cid)


def _values(r: RecipientRow) -> dict[str, str | None]:
    values: dict[str, str | None] = orjson.loads(r.vars) if r.vars else {}
    values["phone"] = r.phone
    values["name"] = r.name or values.get("name")
    return values
