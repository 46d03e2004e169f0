"""Ids that must be unique and unguessable: request ids, webhook ids, the sandbox's message ids.

All come from :mod:`secrets` (the OS's CSPRNG). A seeded Mersenne Twister was
used before: it was no faster here (1.05–1.49 µs against 0.89 µs for
``secrets.token_hex(16)``), its state was shared with any forked child, and
~156 observed ids were enough to predict every later one.
"""

from __future__ import annotations

from secrets import token_hex

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
