"""``Idempotency-Key`` for ``POST /messages``: do an action at most once per (caller, key).

The first successful result is kept in the store (so a repeat after a
restart is answered too) and replayed for 24 h. Repeats that arrive while the
first is still running wait for it on an in-process lock per key. Failures
are not stored: the caller may retry them with the same key.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog

from gateway.api.errors import invalid
from gateway.store import Store

log = structlog.get_logger("gateway.idempotency")

TTL_S = 24 * 3600
PRUNE_EVERY_S = 600.0
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as in the IETF draft's examples


def check_key(raw: str | None) -> str | None:
    """The header's value, ``None`` when absent; INVALID_REQUEST when malformed."""
    if raw is None:
        return None
    if not _KEY.match(raw):
        raise invalid("'Idempotency-Key' must be 1 to 255 visible ASCII characters")
    return raw


def fingerprint(*parts: Any) -> str:
    """A stable hash of the request's meaning (normalized fields, not raw bytes)."""
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


class IdempotencyKeys:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        self._next_prune = 0.0

    async def run(self, scope: str, key: str, body_hash: str, action: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        """``action()``'s result, or the stored one for a repeat; and whether it was a replay.

        The same key with another ``body_hash`` within 24 h is INVALID_REQUEST.
        """
        async with self._locked(scope, key):
            now = self.clock()
            prior = await self.store.get_idempotent(scope, key)
            if prior is not None and prior.created_at > now - TTL_S:
                if prior.body_hash != body_hash:
                    raise invalid("this Idempotency-Key was already used with a different request")
                return prior.data, True
            data = await action()
            try:
                await self.store.save_idempotent(scope, key, body_hash, data, self.clock())
            except Exception:
                # The message is out: answer with it rather than invite a duplicate retry.
                log.exception("idempotency.save_failed", scope=scope)
                return data, False
        await self._maybe_prune()
        return data, False

    @asynccontextmanager
    async def _locked(self, scope: str, key: str) -> AsyncIterator[None]:
        """An asyncio lock per key, dropped when nobody holds or waits for it."""
        k = (scope, key)
        lock, users = self._locks.get(k, (asyncio.Lock(), 0))
        self._locks[k] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[k]
            if users == 1:
                del self._locks[k]
            else:
                self._locks[k] = (lock, users - 1)

    async def _maybe_prune(self) -> None:
        now = self.clock()
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            await self.store.prune_idempotency(now - TTL_S)
