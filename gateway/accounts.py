"""Accounts: tenants who sign up, log in and hold API keys (CONTRACT §10).

Passwords are argon2id hashes, verified in a worker thread (``asyncio.to_thread``)
under a small semaphore so the event loop never waits on them and a flood of
logins cannot take every core or much memory. Login attempts are rate-limited
per client address and per account *before* any hashing.

API keys and session tokens are random secrets shown once and stored as
SHA-256 digests. :meth:`Accounts.resolve` is the :class:`~gateway.auth.Authenticator`
resolver: an indexed lookup of the digest, confirmed with ``hmac.compare_digest``,
behind a small TTL cache that every revocation (key delete, logout, account
delete) invalidates at once.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import TTLCache

from gateway.api.errors import ApiError, invalid
from gateway.auth import Principal, Revocations, hash_secret
from gateway.devices import DeviceManager
from gateway.ratelimit import RateLimiter
from gateway.store import Store
from gateway.store.accounts import AccountRow, ApiKeyRow, CredentialRow, DuplicateAccount
from gateway.timestamps import now_iso
from gateway.webhooks.keys import ROTATION_GRACE_S, AccountSecret, SigningKeys, new_secret
from gateway.webhooks.routing import AccountTarget

log = structlog.get_logger("gateway.accounts")

SESSION_TTL_S = 7 * 24 * 3600
LOGIN_ATTEMPTS_PER_MINUTE = 10  # per client address and per account
MAX_KEYS_PER_ACCOUNT = 100
KEY_PREFIX = "wak_"
SESSION_PREFIX = "gws_"
USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def password_hasher() -> PasswordHasher:
    """argon2id, OWASP's profile (19 MiB, t=2, p=1): ~80 ms on a small core, bounded memory per login."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True, slots=True)
class Issued:
    """What signup and login hand out: a session token, an API key when one was minted, and at
    signup the account's webhook signing secret (shown this once)."""

    account: AccountRow
    token: str
    api_key: str | None
    webhook_secret: str | None = None


@dataclass(frozen=True, slots=True)
class RotatedSecret:
    """A new account webhook secret (shown once) and until when the previous one still signs."""

    secret: str
    previous_valid_until: float | None


@dataclass(frozen=True, slots=True)
class NewKey:
    row: ApiKeyRow
    key: str


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    source: str  # "key" | "session"
    expires_at: float | None


def check_signup(username: Any, email: Any, password: Any) -> tuple[str, str, str]:
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise invalid("'username' must be 3 to 32 characters of letters, digits, '_', '.' or '-'")
    if not isinstance(email, str) or len(email) > 254 or not EMAIL_RE.fullmatch(email.strip()):
        raise invalid("'email' must be an email address")
    if not isinstance(password, str) or len(password) < 8:
        raise invalid("'password' must be at least 8 characters")
    if len(password) > 1024:
        raise invalid("'password' must be at most 1024 characters")
    return username, email.strip(), password


class Accounts:
    """Accounts, their API keys and sessions, and the resolver that turns a presented secret into a principal.

    ``targets`` is the table of each account's own webhook that the webhook
    router reads (``WebhookRouter(account_target=targets.get)``): this service
    keeps it current, from the store at :meth:`load` and on every change.
    ``devices`` is needed to delete an account with its devices and to count them against
    ``max_devices`` (``ACCOUNT_MAX_DEVICES``, 0 = unlimited); ``revocations`` closes the
    WebSockets of a revoked key, session or account at once. ``keys`` (kept as ``signing``) holds each account's
    webhook signing secret for the dispatcher: kept current here like ``targets``.
    """

    def __init__(
        self,
        store: Store,
        devices: DeviceManager,
        targets: dict[int, AccountTarget],
        revocations: Revocations,
        max_devices: int = 0,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher | None = None,
        login_limit: int = LOGIN_ATTEMPTS_PER_MINUTE,
        keys: SigningKeys | None = None,
    ) -> None:
        self.store = store
        self.devices = devices
        self.revocations = revocations
        self.max_devices = max_devices
        self.clock = clock
        self.hasher = hasher or password_hasher()
        self.login_limiter = RateLimiter(login_limit, clock=clock)
        self._hashing = asyncio.Semaphore(4)
        self._dummy_hash: str | None = None
        self._cache: TTLCache[str, _Cached] = TTLCache(10_000, 30, timer=clock)
        self._targets = targets
        self.signing = keys if keys is not None else SigningKeys(None, clock=clock)
        # In a cluster, told of every change other nodes must apply (gateway.cluster.invalidate):
        # ``(kind, fields)``, kinds ``credentials`` (hashes), ``account`` and ``account_deleted`` (id).
        self.changed: Callable[[str, dict[str, Any]], None] | None = None

    def _changed(self, kind: str, **fields: Any) -> None:
        if self.changed is not None:
            self.changed(kind, fields)

    async def load(self) -> None:
        """At start: account webhook targets and secrets into memory (an account created before
        secrets existed gets one now), dead credentials out of the store."""
        for account in await self.store.all_accounts():
            self._remember_target(account)
            if account.webhook_secret is None:
                secret = new_secret()
                await self.store.set_account_webhook_secret(account.id, secret, None, None)
                account = replace(account, webhook_secret=secret)
            self._remember_secret(account)
        await self.store.delete_dead_credentials(self.clock())

    # -- passwords --------------------------------------------------------------------

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._hashing:
            try:
                return await asyncio.to_thread(self.hasher.verify, password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

    async def _dummy(self) -> str:
        # Unknown users are verified against this so they take as long as wrong passwords.
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    # -- signup / login / logout ----------------------------------------------------------

    async def signup(self, username: str, email: str, password: str) -> Issued:
        password_hash = await self._hash(password)
        secret = new_secret()
        try:
            account_id = await self.store.create_account(username, email, password_hash, now_iso(), secret)
        except DuplicateAccount as exc:
            raise invalid(f"that {exc.field} is already registered") from exc
        account = await self.store.account(account_id)
        assert account is not None
        log.info("account.created", user_id=account_id, username=username)
        self._remember_secret(account)
        token = await self._new_session(account_id)
        key = await self.create_key(account_id, "default")
        return Issued(account, token, key.key, secret)

    def check_login_rate(self, bucket: str) -> None:
        wait = self.login_limiter.hit(bucket)
        if wait:
            raise ApiError(
                "RATE_LIMITED", "too many sign-in attempts; try again later", {"Retry-After": str(int(wait))}
            )

    async def login(self, field: str, value: str, password: str, address: str) -> Issued:
        """Sign in by ``username`` or ``email``. Rate limits run before any hashing."""
        self.check_login_rate(f"addr:{address}")
        account = await self.store.account_by_login(field, value)
        self.check_login_rate(f"acct:{account.id}" if account is not None else f"{field}:{value.lower()}")
        if account is None:
            await self._verify(await self._dummy(), password)
            raise ApiError("UNAUTHORIZED", "wrong username, email or password")
        if not await self._verify(account.password_hash, password):
            raise ApiError("UNAUTHORIZED", "wrong username, email or password")
        if self.hasher.check_needs_rehash(account.password_hash):
            await self.store.set_password_hash(account.id, await self._hash(password))
        token = await self._new_session(account.id)
        # A key for callers that need one (e.g. ?apiKey= on the WebSocket); it ends with this session.
        key = await self.create_key(account.id, "login", session_token=token)
        log.info("account.login", user_id=account.id)
        return Issued(account, token, key.key)

    async def _new_session(self, account_id: int) -> str:
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        await self.store.create_session(hash_secret(token), account_id, now, now + SESSION_TTL_S)
        return token

    async def logout(self, secrets_presented: list[str]) -> int:
        """Revoke the sessions among these secrets (and their session keys). How many sessions."""
        count = 0
        for secret in secrets_presented:
            revoked = await self.store.revoke_session(hash_secret(secret), now_iso())
            for h in revoked:
                self._cache.pop(h, None)
            self.revocations.revoke(revoked)  # its WebSockets (and its session keys') close now
            if revoked:
                self._changed("credentials", hashes=list(revoked))
            count += bool(revoked)
        return count

    # -- keys ------------------------------------------------------------------------

    async def create_key(self, account_id: int, name: str, session_token: str | None = None) -> NewKey:
        now = self.clock()
        if session_token is None and len(await self.store.api_keys(account_id, now)) >= MAX_KEYS_PER_ACCOUNT:
            raise invalid(f"an account may hold at most {MAX_KEYS_PER_ACCOUNT} keys; delete one first")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        prefix = key[:12]
        created = now_iso()
        session_hash = hash_secret(session_token) if session_token else None
        expires = now + SESSION_TTL_S if session_token else None
        key_id = await self.store.create_api_key(
            account_id, name, hash_secret(key), prefix, created, session_hash, expires
        )
        return NewKey(ApiKeyRow(key_id, account_id, name, prefix, created, None, expires), key)

    async def keys(self, account_id: int) -> list[ApiKeyRow]:
        return await self.store.api_keys(account_id, self.clock())

    async def revoke_key(self, account_id: int, key_id: int) -> bool:
        key_hash = await self.store.revoke_api_key(account_id, key_id, now_iso())
        if key_hash is None:
            return False
        self.forget_credentials([key_hash])
        self._changed("credentials", hashes=[key_hash])
        return True

    def forget_credentials(self, hashes: list[str]) -> None:
        """These credentials are revoked: out of the cache, their WebSockets closed (4401)."""
        for h in hashes:
            self._cache.pop(h, None)
        self.revocations.revoke(hashes)

    # -- the resolver ------------------------------------------------------------------------

    async def resolve(self, secret_hash: str, kind: str) -> Principal | None:
        """``Authenticator.resolver``: kind ``key`` → API keys; ``cookie`` → sessions; ``bearer`` → either."""
        now = self.clock()
        cached = self._cache.get(secret_hash)
        if cached is None:
            cached = await self._lookup(secret_hash, now)
            if cached is None:
                return None
            self._cache[secret_hash] = cached
        if cached.expires_at is not None and cached.expires_at <= now:
            self._cache.pop(secret_hash, None)
            return None
        if (kind == "key" and cached.source != "key") or (kind == "cookie" and cached.source != "session"):
            return None
        if cached.source == "session" and kind == "bearer":
            return replace(cached.principal, via="session")
        return cached.principal

    async def _lookup(self, secret_hash: str, now: float) -> _Cached | None:
        row: CredentialRow | None = await self.store.credential_for_session(secret_hash, now)
        source, via = "session", "cookie"
        if row is None:
            row = await self.store.credential_for_key(secret_hash, now)
            source, via = "key", "key"
        # The indexed lookup found it by equality; confirm in constant time all the same.
        if row is None or not hmac.compare_digest(row.secret_hash, secret_hash):
            return None
        principal = Principal(
            False, row.account_id, row.username, via=via, credential=secret_hash, expires_at=row.expires_at
        )
        return _Cached(principal, source, row.expires_at)

    def _forget_account(self, account_id: int) -> None:
        for h in [h for h, c in list(self._cache.items()) if c.principal.account_id == account_id]:
            self._cache.pop(h, None)

    # -- the account itself ------------------------------------------------------------------

    async def account(self, account_id: int) -> AccountRow | None:
        return await self.store.account(account_id)

    async def all_accounts(self) -> list[AccountRow]:
        return await self.store.all_accounts()

    async def set_webhook(self, account_id: int, url: str | None, events: list[str] | None) -> AccountRow:
        await self.store.set_account_webhook(account_id, url, events)
        account = await self.store.account(account_id)
        if account is None:
            raise ApiError("NOT_FOUND", "no such account")
        self._remember_target(account)
        self._changed("account", id=account_id)
        return account

    async def refresh(self, account_id: int) -> None:
        """Another node changed this account's webhook target or secret: read them again."""
        account = await self.store.account(account_id)
        if account is not None:
            self._remember_target(account)
            self._remember_secret(account)

    async def rotate_webhook_secret(self, account_id: int) -> RotatedSecret:
        """A new signing secret for the account's deliveries; the current one keeps signing (as a
        second Standard Webhooks signature) for :data:`ROTATION_GRACE_S`. Rotating again within
        that time ends the grace of the oldest: only the secret being replaced stays honoured."""
        account = await self.store.account(account_id)
        if account is None:
            raise ApiError("NOT_FOUND", "no such account")
        secret = new_secret()
        previous = account.webhook_secret
        until = self.clock() + ROTATION_GRACE_S if previous else None
        await self.store.set_account_webhook_secret(account_id, secret, previous, until)
        self._remember_secret(
            replace(account, webhook_secret=secret, webhook_secret_prev=previous, webhook_secret_prev_until=until)
        )
        self._changed("account", id=account_id)
        log.info("account.webhook_secret_rotated", user_id=account_id)
        return RotatedSecret(secret, until)

    def _remember_secret(self, account: AccountRow) -> None:
        if account.webhook_secret:
            self.signing.set_account(
                account.id,
                AccountSecret(account.webhook_secret, account.webhook_secret_prev, account.webhook_secret_prev_until),
            )

    def _remember_target(self, account: AccountRow) -> None:
        if account.webhook_url:
            events = frozenset(account.webhook_events) if account.webhook_events is not None else None
            self._targets[account.id] = (account.webhook_url, events)
        else:
            self._targets.pop(account.id, None)

    async def delete_account(self, account_id: int) -> list[str] | None:
        """Delete the account and everything it owns: devices (logged out, contacts purged), keys,
        sessions. The tokens of the devices removed, or None if there is no such account."""
        if await self.store.account(account_id) is None:
            return None
        self.revocations.revoke_account(account_id)  # its WebSockets close before its devices go
        tokens = [d.token for d in self.devices.visible(account_id, False)]
        for token in tokens:
            await self.devices.remove(token, purge=True)
        await self.store.delete_account(account_id)
        self.forget_account(account_id)
        self._changed("account_deleted", id=account_id)
        log.info("account.deleted", user_id=account_id, devices=len(tokens))
        return tokens

    def forget_account(self, account_id: int) -> None:
        """The account is gone: its webhook target, secret and credentials out of memory, its WebSockets
        closed (4401)."""
        self._targets.pop(account_id, None)
        self.signing.forget_account(account_id)
        self._forget_account(account_id)
        self.revocations.revoke_account(account_id)

    def check_device_quota(self, caller: Principal, token: str) -> None:
        """``POST /devices`` of a new device by an account already holding ``ACCOUNT_MAX_DEVICES``:
        QUOTA_EXCEEDED. The admin is unlimited; reopening an existing device is not a new one.

        Called right before ``DeviceManager.open`` with no await in between, so two concurrent
        creates cannot both pass on the last free place."""
        limit = self.max_devices
        if caller.is_admin or limit <= 0 or self.devices.get(token) is not None:
            return
        if len(self.devices.visible(caller.account_id, False)) >= limit:
            raise ApiError("QUOTA_EXCEEDED", f"this account already holds its {limit} devices; delete one first")
