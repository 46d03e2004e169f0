"""Phones: the rules every phone number and device token follows (:mod:`.rules`) and the
on-WhatsApp answer cache (:mod:`.cache`).

The names are re-exported here so callers write ``from gateway.phones import normalize``.
"""

from __future__ import annotations

from gateway.phones.cache import Check, PhoneAnswer, PhoneCache
from gateway.phones.rules import MAX_RAW_LENGTH, InvalidPhone, mask, normalize, to_jid

__all__ = [
    "MAX_RAW_LENGTH",
    "Check",
    "InvalidPhone",
    "PhoneAnswer",
    "PhoneCache",
    "mask",
    "normalize",
    "to_jid",
]
