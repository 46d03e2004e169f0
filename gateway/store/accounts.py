"""Accounts (tenants), their API keys and browser sessions.

Secrets never reach this module in the clear: API keys and session tokens are
stored and looked up by their SHA-256 hex digest (an indexed, unique column),
passwords only as argon2 hashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.store.conn import integrity_errors
from gateway.store.db import Db


class DuplicateAccount(Exception):
    """The username or email is already registered; ``field`` names which."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already registered")
        self.field = field


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    username: str
    email: str
    password_hash: str
    webhook_url: str | None
    webhook_events: list[str] | None
    created_at: str
    webhook_secret: str | None = None  # signs deliveries to the account's targets (kept to sign: not hashed)
    webhook_secret_prev: str | None = None  # the one it replaced, still signing until ...
    webhook_secret_prev_until: float | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: int
    account_id: int
    name: str
    prefix: str
    created_at: str
    revoked_at: str | None
    expires_at: float | None  # keys minted at login end with their session


@dataclass(frozen=True, slots=True)
class CredentialRow:
    """What a key or session hash resolves to."""

    account_id: int
    username: str
    secret_hash: str
    expires_at: float | None  # sessions only


_ACCOUNT_COLUMNS = (
    "id, username, email, password_hash, webhook_url, webhook_events, created_at,"
    " webhook_secret, webhook_secret_prev, webhook_secret_prev_until"
)


def _account(r: Any) -> AccountRow:
    events = r["webhook_events"]
    return AccountRow(
        id=r["id"],
        username=r["username"],
        email=r["email"],
        password_hash=r["password_hash"],
        webhook_url=r["webhook_url"],
        webhook_events=json.loads(events) if events is not None else None,
        created_at=r["created_at"],
        webhook_secret=r["webhook_secret"],
        webhook_secret_prev=r["webhook_secret_prev"],
        webhook_secret_prev_until=r["webhook_secret_prev_until"],
    )


def _key(r: Any) -> ApiKeyRow:
    return ApiKeyRow(
        id=r["id"],
        account_id=r["account_id"],
        name=r["name"],
        prefix=r["prefix"],
        created_at=r["created_at"],
        revoked_at=r["revoked_at"],
        expires_at=r["expires_at"],
    )


class AccountQueries:
    db: Db

    # -- accounts -----------------------------------------------------------------

    async def create_account(
        self, username: str, email: str, password_hash: str, created_at: str, webhook_secret: str | None = None
    ) -> int:
        """Insert an account; :class:`DuplicateAccount` if the username or email exists (case-insensitive)."""
        async with self.db.transaction():
            clash = await self.db.fetchone(
                "SELECT username = ? COLLATE NOCASE AS same_user FROM accounts"
                " WHERE username = ? COLLATE NOCASE OR email = ? COLLATE NOCASE LIMIT 1",
                (username, username, email),
            )
            if clash is not None:
                raise DuplicateAccount("username" if clash["same_user"] else "email")
            try:
                return await self.db.insert(
                    "INSERT INTO accounts (username, email, password_hash, created_at, webhook_secret)"
                    " VALUES (?,?,?,?,?)",
                    (username, email, password_hash, created_at, webhook_secret),
                )
            except integrity_errors() as exc:  # a race the SELECT above did not see
                raise DuplicateAccount("username or email") from exc

    async def account(self, account_id: int) -> AccountRow | None:
        r = await self.db.fetchone(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,))
        return _account(r) if r is not None else None

    async def account_by_login(self, field: str, value: str) -> AccountRow | None:
        """By ``username`` or ``email`` (case-insensitive)."""
        column = "email" if field == "email" else "username"
        r = await self.db.fetchone(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE {column} = ? COLLATE NOCASE", (value,)
        )
        return _account(r) if r is not None else None

    async def all_accounts(self) -> list[AccountRow]:
        rows = await self.db.fetchall(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY id")
        return [_account(r) for r in rows]

    async def delete_account(self, account_id: int) -> bool:
        """Delete the account; its keys and sessions go with it (ON DELETE CASCADE)."""
        return await self.db.execute("DELETE FROM accounts WHERE id = ?", (account_id,)) > 0

    async def set_password_hash(self, account_id: int, password_hash: str) -> None:
        await self.db.execute("UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id))

    async def set_account_webhook(self, account_id: int, url: str | None, events: list[str] | None) -> None:
        await self.db.execute(
            "UPDATE accounts SET webhook_url = ?, webhook_events = ? WHERE id = ?",
            (url, json.dumps(events) if events is not None else None, account_id),
        )

    async def set_account_webhook_secret(
        self, account_id: int, secret: str, previous: str | None, previous_until: float | None
    ) -> bool:
        """Replace the account's signing secret (keeping ``previous`` until ``previous_until``)."""
        changed = await self.db.execute(
            "UPDATE accounts SET webhook_secret = ?, webhook_secret_prev = ?, webhook_secret_prev_until = ?"
            " WHERE id = ?",
            (secret, previous, previous_until, account_id),
        )
        return changed > 0

    # -- API keys -------------------------------------------------------------------

    async def create_api_key(
        self,
        account_id: int,
        name: str,
        key_hash: str,
        prefix: str,
        created_at: str,
        session_hash: str | None = None,
        expires_at: float | None = None,
    ) -> int:
        """A key; with ``session_hash`` it is bound to that session (revoked with it, expires with it)."""
        return await self.db.insert(
            "INSERT INTO api_keys (account_id, name, key_hash, prefix, created_at, session_hash, expires_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (account_id, name, key_hash, prefix, created_at, session_hash, expires_at),
        )

    async def api_keys(self, account_id: int, now: float) -> list[ApiKeyRow]:
        """The account's live (not revoked, not expired) keys, oldest first."""
        rows = await self.db.fetchall(
            "SELECT id, account_id, name, prefix, created_at, revoked_at, expires_at FROM api_keys"
            " WHERE account_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (account_id, now),
        )
        return [_key(r) for r in rows]

    async def revoke_api_key(self, account_id: int, key_id: int, revoked_at: str) -> str | None:
        """Revoke one of the account's live keys; its hash (to drop from caches), or None if no such key."""
        async with self.db.transaction():
            r = await self.db.fetchone(
                "SELECT key_hash FROM api_keys WHERE id = ? AND account_id = ? AND revoked_at IS NULL",
                (key_id, account_id),
            )
            if r is None:
                return None
            await self.db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (revoked_at, key_id))
            return str(r["key_hash"])

    async def credential_for_key(self, key_hash: str, now: float) -> CredentialRow | None:
        r = await self.db.fetchone(
            "SELECT k.account_id, a.username, k.key_hash, k.expires_at FROM api_keys k"
            " JOIN accounts a ON a.id = k.account_id"
            " WHERE k.key_hash = ? AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?)",
            (key_hash, now),
        )
        if r is None:
            return None
        expires = r["expires_at"]
        return CredentialRow(r["account_id"], r["username"], r["key_hash"], float(expires) if expires else None)

    # -- sessions -------------------------------------------------------------------

    async def create_session(self, token_hash: str, account_id: int, created_at: float, expires_at: float) -> None:
        await self.db.execute(
            "INSERT INTO auth_sessions (token_hash, account_id, created_at, expires_at) VALUES (?,?,?,?)",
            (token_hash, account_id, created_at, expires_at),
        )

    async def credential_for_session(self, token_hash: str, now: float) -> CredentialRow | None:
        r = await self.db.fetchone(
            "SELECT s.account_id, a.username, s.token_hash, s.expires_at FROM auth_sessions s"
            " JOIN accounts a ON a.id = s.account_id"
            " WHERE s.token_hash = ? AND s.revoked = 0 AND s.expires_at > ?",
            (token_hash, now),
        )
        if r is None:
            return None
        return CredentialRow(r["account_id"], r["username"], r["token_hash"], float(r["expires_at"]))

    async def revoke_session(self, token_hash: str, revoked_at: str) -> list[str]:
        """Revoke a session and the keys minted with it; the hashes revoked (to drop from caches)."""
        async with self.db.transaction():
            found = await self.db.execute(
                "UPDATE auth_sessions SET revoked = 1 WHERE token_hash = ? AND revoked = 0", (token_hash,)
            )
            if not found:
                return []
            rows = await self.db.fetchall(
                "SELECT key_hash FROM api_keys WHERE session_hash = ? AND revoked_at IS NULL", (token_hash,)
            )
            await self.db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE session_hash = ? AND revoked_at IS NULL",
                (revoked_at, token_hash),
            )
            return [token_hash, *(str(r["key_hash"]) for r in rows)]

    async def delete_dead_credentials(self, now: float) -> int:
        """Forget expired and revoked sessions and session keys (they can never authenticate again)."""
        async with self.db.transaction():
            sessions = await self.db.execute("DELETE FROM auth_sessions WHERE revoked = 1 OR expires_at <= ?", (now,))
            keys = await self.db.execute(
                "DELETE FROM api_keys WHERE session_hash IS NOT NULL AND (revoked_at IS NOT NULL OR expires_at <= ?)",
                (now,),
            )
            return sessions + keys
