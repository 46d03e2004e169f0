"""Ids that must be unique and unguessable: request ids, webhook ids, the sandbox's message ids.

All come from the OS's CSPRNG (``os.urandom``, as :mod:`secrets` uses). A seeded
Mersenne Twister was used before: its state was shared with any forked child,
and ~156 observed ids were enough to predict every later one. The bytes are
read 4 KiB at a time into a per-thread pool (each id still takes bytes no other
id got): a ``getrandom`` call per id was ~5 % of a ``POST /messages`` under load
(request id, message id, webhook ids), the pool's slice is a fraction of it. A
forked child starts with an empty pool, never its parent's.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
_local = threading.local()


def _reset_after_fork() -> None:
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


def token_hex(nbytes: int) -> str:
    """``2 * nbytes`` random hex digits, never handed out twice."""
    loc = _local
    pool: str = getattr(loc, "pool", "")
    pos: int = getattr(loc, "pos", 0)
    end = pos + 2 * nbytes
    if end > len(pool):
        pool, pos, end = os.urandom(_POOL_BYTES).hex(), 0, 2 * nbytes
        loc.pool = pool
    loc.pos = end
    return pool[pos:end]


_VARIANT = "89ab"  # RFC 4122 variant: the top two bits of the 17th hex digit are 10


def request_id() -> str:
    """A random (version 4) UUID string, as ``X-Request-ID`` carries it (CONTRACT §2)."""
    h = token_hex(16)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def webhook_id() -> str:
    """``msg_`` + 32 hex digits: the receiver's idempotency key (Standard Webhooks)."""
    return f"msg_{token_hex(16)}"


def message_id() -> str:
    """``3EB0`` + 16 upper-case hex digits, like the ids WhatsApp Web gives."""
    return f"3EB0{token_hex(8).upper()}"
