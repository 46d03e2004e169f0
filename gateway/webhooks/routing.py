"""Who gets an event: the operator's global URL, the device's own, its account's.

The event pump calls :meth:`WebhookRouter.deliveries` inside the transaction
of the state change, so the outbox rows and the change commit together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway import ids
from gateway.settings import Settings
from gateway.store import DeviceRow, NewDelivery
from gateway.timestamps import now_iso
from gateway.webhooks.keys import TARGET_ACCOUNT, TARGET_DEVICE, TARGET_OPERATOR

AccountTarget = tuple[str, frozenset[str] | None]


def new_webhook_id() -> str:
    """``msg_`` + 32 hex digits: unique, the receiver's idempotency key (Standard Webhooks)."""
    return ids.webhook_id()


class WebhookRouter:
    """Resolves an event's target URLs: global, the device's own, its account's."""

    def __init__(
        self,
        settings: Settings,
        account_target: Callable[[int], AccountTarget | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.account_target = account_target
        self.clock = clock

    def targets(self, event: str, device: DeviceRow) -> list[tuple[str, bool, str]]:
        """``[(url, check_private, target)]`` for ``event``; one entry per distinct URL (the first
        target naming it wins: the operator's, the device's, the account's)."""
        s = self.settings
        if not s.webhook_url and not device.webhook_url and (device.owner_id is None or self.account_target is None):
            return []  # nothing is subscribed anywhere: the usual case of a receipt
        out: dict[str, tuple[bool, str]] = {}
        if s.webhook_url and (s.webhook_events is None or event in s.webhook_events):
            out[s.webhook_url] = (False, TARGET_OPERATOR)
        tenant_set = device.owner_id is not None and not s.webhook_allow_private
        if device.webhook_url and (device.webhook_events is None or event in device.webhook_events):
            out.setdefault(device.webhook_url, (tenant_set, TARGET_DEVICE))
        if device.owner_id is not None and self.account_target is not None:
            target = self.account_target(device.owner_id)
            if target is not None:
                url, events = target
                if events is None or event in events:
                    out.setdefault(url, (not s.webhook_allow_private, TARGET_ACCOUNT))
        return [(url, check, kind) for url, (check, kind) in out.items()]

    def deliveries(self, event: str, device: DeviceRow, data: Any, timestamp: str | None = None) -> list[NewDelivery]:
        """The outbox rows of one event (none when nothing subscribes); ``timestamp`` defaults to now."""
        targets = self.targets(event, device)
        if not targets:
            return []
        stamp = timestamp if timestamp is not None else now_iso()
        body = orjson.dumps({"event": event, "token": device.token, "data": data, "timestamp": stamp})
        now = self.clock()
        return [
            NewDelivery(
                webhook_id=new_webhook_id(),
                event=event,
                token=device.token,
                owner_id=device.owner_id,
                url=url,
                body=body,
                check_private=check,
                created_at=now,
                target=kind,
            )
            for url, check, kind in targets
        ]
