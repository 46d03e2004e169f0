"""Accounts (tenants), their API keys and browser sessions."""

from __future__ import annotations

from gateway.store.db import Db


class AccountQueries:
    db: Db
