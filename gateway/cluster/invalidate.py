"""Changes one node makes that every other node must apply at once (CONTRACT §14), over ``wa.<cluster>.inv``.

Each node keeps some state in memory for speed: resolved credentials (30 s), account webhook targets
and signing secrets, the phone cache, the WebSockets opened with each credential. The node where a
change happens applies it locally as a single node does, then publishes it; every other node applies
the same: a revoked API key or logged-out session is dropped from its cache and its WebSockets close
with 4401; a deleted account's devices living there are removed and its sockets closed; an account's
new webhook target or secret is read again from the store; ``DELETE /cache`` empties every node's phone
cache; a device's webhook settings (target, secret) are read again, so a node delivering the device's
webhooks from the shared outbox signs them with the device's current secret.

What travels is what changed, never a secret: credential hashes, an account id, a device token.
A node that misses a message (the bus down at that moment) converges anyway: resolved credentials
live 30 s in its cache, and the rest is read from the store at start. Applying is idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

import orjson
import structlog

from gateway.cluster.bus import Bus, Handle, Headers
from gateway.store import Store

log = structlog.get_logger("gateway.cluster.invalidate")

SUBJECT = "inv"  # after the bus's prefix


# What this module needs of the services it keeps current (gateway.accounts.Accounts, DeviceManager,
# PhoneCache, SigningKeys): protocols, so that the cluster package sits beside the devices in the layers.
class _Row(Protocol):
    @property
    def webhook_secret(self) -> str | None: ...


class _Device(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def row(self) -> _Row: ...


class _Devices(Protocol):
    def get(self, token: str) -> Any: ...

    def visible(self, account_id: int | None, is_admin: bool) -> Iterable[_Device]: ...

    async def remove(self, token: str, purge: bool) -> None: ...


class _Accounts(Protocol):
    changed: Callable[[str, dict[str, Any]], None] | None

    def forget_credentials(self, hashes: list[str]) -> None: ...

    def forget_account(self, account_id: int) -> None: ...

    async def refresh(self, account_id: int) -> None: ...


class _PhoneCache(Protocol):
    def clear(self) -> int: ...


class _Keys(Protocol):
    def bind_devices(self, device_secret: Callable[[str], str | None]) -> None: ...


class _Campaigns(Protocol):
    changed: Callable[[str, dict[str, Any]], None] | None

    def status_changed_elsewhere(self, campaign_id: str, status: str) -> None: ...


class Invalidations:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        accounts: _Accounts,
        devices: _Devices,
        phone_cache: _PhoneCache,
        keys: _Keys,
        campaigns: _Campaigns | None = None,
    ) -> None:
        self.bus = bus
        self.campaigns = campaigns
        self.store = store
        self.accounts = accounts
        self.devices = devices
        self.phone_cache = phone_cache
        self.keys = keys
        self._handle: Handle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Webhook secrets of the devices living on other nodes (a local device's is on its row).
        self._device_secrets: dict[str, str] = {}
        self.applied = 0

    async def start(self) -> None:
        for row in await self.store.all_devices():
            if row.webhook_secret:
                self._device_secrets[row.token] = row.webhook_secret
        self.keys.bind_devices(self._device_secret)
        self.accounts.changed = self.publish
        if self.campaigns is not None:
            self.campaigns.changed = self.publish
        self._handle = await self.bus.subscribe(self.bus.prefix + SUBJECT, self._incoming)

    async def stop(self) -> None:
        self.accounts.changed = None
        if self.campaigns is not None:
            self.campaigns.changed = None
        if self._handle is not None:
            await self.bus.unsubscribe(self._handle)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def _device_secret(self, token: str) -> str | None:
        device = self.devices.get(token)
        if device is not None:
            secret: str | None = device.row.webhook_secret
            return secret
        return self._device_secrets.get(token)

    # -- what this node changed --------------------------------------------------------------

    def publish(self, kind: str, fields: dict[str, Any]) -> None:
        body = orjson.dumps({"node": self.bus.origin, "kind": kind, **fields})
        self._spawn(self.bus.publish(self.bus.prefix + SUBJECT, body))

    def phone_cache_cleared(self) -> None:
        self.publish("phone_cache", {})

    def device_changed(self, token: str) -> None:
        """The device's webhook settings changed, or it was created or deleted."""
        self.publish("device", {"token": token})

    # -- what another node changed -------------------------------------------------------------

    def _incoming(self, data: bytes, headers: Headers | None) -> None:
        try:
            msg = orjson.loads(data)
            node, kind = msg["node"], msg["kind"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("invalidate.bad_message", size=len(data))
            return
        if node == self.bus.origin:
            return  # applied where it happened
        self._spawn(self._apply(kind, msg))

    async def _apply(self, kind: str, msg: dict[str, Any]) -> None:
        if kind == "credentials":
            self.accounts.forget_credentials([str(h) for h in msg["hashes"]])
        elif kind == "account":
            await self.accounts.refresh(int(msg["id"]))
        elif kind == "account_deleted":
            account_id = int(msg["id"])
            self.accounts.forget_account(account_id)  # sockets closed before its devices go, as locally
            for device in self.devices.visible(account_id, False):
                await self.devices.remove(device.token, purge=True)
            self.accounts.forget_account(account_id)
        elif kind == "phone_cache":
            self.phone_cache.clear()
        elif kind == "campaign":  # paused, resumed or cancelled through another node: its worker may run here
            if self.campaigns is not None:
                self.campaigns.status_changed_elsewhere(str(msg["id"]), str(msg["status"]))
        elif kind == "device":
            token = str(msg["token"])
            row = await self.store.get_device(token)
            if row is not None and row.webhook_secret:
                self._device_secrets[token] = row.webhook_secret
            else:
                self._device_secrets.pop(token, None)
        else:
            log.warning("invalidate.unknown_kind", kind=kind)
            return
        self.applied += 1

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(self._logged(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:
            log.exception("invalidate.failed")
