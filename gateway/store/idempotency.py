"""Idempotency keys of ``POST /messages``: the first successful response per (caller, key)."""

from __future__ import annotations

from gateway.store.db import Db


class IdempotencyQueries:
    db: Db
