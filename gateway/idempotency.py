"""``Idempotency-Key`` for ``POST /messages``: do an action at most once per (caller, key).

The first successful result is kept in the store (so a repeat after a
restart is answered too) and replayed for 24 h. Repeats that arrive while the
first is still running wait for it: on an in-process lock per key, and — for a
repeat reaching another node of a cluster, or this node while the call runs on
another — on the key's *claim row* in the shared store, taken before the first
call runs and replaced by its result (looked at again every ``poll_s``). A claim
whose holder died is taken over after :data:`CLAIM_S`. Failures are not stored:
the claim is released and the caller may retry with the same key.
"""

from __future__ import annotations

import asyncio
import contextlib
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
# How long a claim holds without its result: longer than any one call (a send with a media fetch and its
# conversion, a forwarded call's timeout). Past it the holder is taken for dead and a repeat runs.
CLAIM_S = 300.0
POLL_S = 0.05
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
    def __init__(
        self, store: Store, clock: Callable[[], float] = time.time, poll_s: float = POLL_S, claim_s: float = CLAIM_S
    ) -> None:
        self.store = store
        self.clock = clock
        self.poll_s = poll_s
        self.claim_s = claim_s
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}
        self._next_prune = 0.0

    async def run(self, scope: str, key: str, body_hash: str, action: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        """``action()``'s result, or the stored one for a repeat; and whether it was a replay.

        The same key with another ``body_hash`` within 24 h is INVALID_REQUEST.
        """
        async with self._locked(scope, key):
            while True:
                now = self.clock()
                prior = await self.store.get_idempotent(scope, key)
                if prior is not None and prior.created_at > now - TTL_S:
                    if prior.body_hash != body_hash:
                        raise invalid("this Idempotency-Key was already used with a different request")
                    if not prior.pending:
                        return prior.data, True
                    if prior.created_at > now - self.claim_s:
                        await asyncio.sleep(self.poll_s)  # the first call runs elsewhere: wait for its result
                        continue
                if await self.store.claim_idempotent(
                    scope, key, body_hash, now, expired_before=now - TTL_S, stale_before=now - self.claim_s
                ):
                    break
            try:
                data = await action()
            except BaseException:
                await self.store.release_idempotent(scope, key)
                raise
            try:
                await self.store.save_idempotent(scope, key, body_hash, data, self.clock())
            except Exception:
                # The message is out: answer with it rather than invite a duplicate retry.
                log.exception("idempotency.save_failed", scope=scope)
                with contextlib.suppress(Exception):  # repeats must not wait out a claim nobody will fill
                    await self.store.release_idempotent(scope, key)
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
