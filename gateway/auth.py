"""Who is calling: the admin key, an account's API key, a bearer session token,
or the browser session cookie → a :class:`Principal`; and :class:`Revocations`,
through which revoking a credential reaches the WebSockets it opened.

Keys are compared in constant time. Account credentials are looked up by their
SHA-256 hash through ``resolver`` (set when accounts are enabled), so no secret
is ever stored or compared in the clear.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import HTTPConnection

SESSION_COOKIE = "gw_session"
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Principal:
    is_admin: bool
    account_id: int | None = None
    username: str | None = None
    via: str = "key"  # key | session | cookie
    credential: str | None = None  # the SHA-256 of the secret that authenticated (None: the admin key)
    expires_at: float | None = None  # when that credential ends by itself (sessions and their keys), epoch s

    @property
    def rate_key(self) -> str:
        return "admin" if self.is_admin else f"acct:{self.account_id}"

    def can_see(self, owner_id: int | None) -> bool:
        return self.is_admin or owner_id == self.account_id


ADMIN = Principal(is_admin=True, username="admin")

Resolver = Callable[[str, str], Awaitable[Principal | None]]  # (credential_hash, kind) -> Principal


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def credentials(conn: HTTPConnection, allow_query: bool = False) -> list[tuple[str, str]]:
    """The credentials a request carries, as ``(kind, secret)`` in priority order.

    Reads the raw header list once (this runs on every request).
    """
    auth = key = ""
    has_cookie = False
    for name, value in conn.scope["headers"]:
        if name == b"authorization" and not auth:
            auth = value.decode("latin-1")
        elif name == b"x-api-key" and not key:
            key = value.decode("latin-1").strip()
        elif name == b"cookie":
            has_cookie = True
    found: list[tuple[str, str]] = []
    if auth[:7].lower() == "bearer ":
        found.append(("bearer", auth[7:].strip()))
    if key:
        found.append(("key", key))
    if allow_query:
        q = conn.query_params.get("apiKey")
        if q:
            found.append(("key", q.strip()))
    if has_cookie:
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie:
            found.append(("cookie", cookie))
    return found


class Revocations:
    """Who holds a connection opened with which credential, so revoking the credential ends it.

    A WebSocket stays open long after the request that authenticated it: deleting
    its key, logging its session out or deleting its account must reach it too.
    Each connection :meth:`watch`-es its principal and gets an :class:`asyncio.Event`;
    :meth:`revoke` and :meth:`revoke_account` set the events of every connection
    opened with those credentials (or by that account) at once — no polling.
    """

    def __init__(self) -> None:
        self._by_credential: dict[str, set[asyncio.Event]] = {}
        self._by_account: dict[int, set[asyncio.Event]] = {}

    def watch(self, principal: Principal) -> asyncio.Event:
        """An event set when ``principal``'s credential or account is revoked (never, for the admin key)."""
        event = asyncio.Event()
        if principal.credential is not None:
            self._by_credential.setdefault(principal.credential, set()).add(event)
        if principal.account_id is not None:
            self._by_account.setdefault(principal.account_id, set()).add(event)
        return event

    def unwatch(self, principal: Principal, event: asyncio.Event) -> None:
        _discard(self._by_credential, principal.credential, event)
        _discard(self._by_account, principal.account_id, event)

    def revoke(self, credentials: Iterable[str]) -> int:
        """Signal the connections opened with any of these credential hashes; how many."""
        return sum(_fire(self._by_credential.pop(h, ())) for h in credentials)

    def revoke_account(self, account_id: int) -> int:
        return _fire(self._by_account.pop(account_id, ()))

    def watching(self) -> int:
        return sum(len(v) for v in self._by_account.values())


def _fire(events: Iterable[asyncio.Event]) -> int:
    n = 0
    for event in events:
        event.set()
        n += 1
    return n


def _discard(index: dict[K, set[asyncio.Event]], key: K | None, event: asyncio.Event) -> None:
    if key is None:
        return
    events = index.get(key)
    if events is not None:
        events.discard(event)
        if not events:
            del index[key]


class Authenticator:
    def __init__(
        self, admin_key: str, resolver: Resolver | None = None, revocations: Revocations | None = None
    ) -> None:
        self._admin = admin_key.encode()
        self.resolver = resolver
        self.revocations = revocations if revocations is not None else Revocations()

    def is_admin_key(self, secret: str) -> bool:
        return hmac.compare_digest(secret.encode(), self._admin)

    def credential_header(
        self, conn: HTTPConnection, principal: Principal, allow_query: bool = False
    ) -> tuple[str, str] | None:
        """The credential of ``conn`` that authenticated ``principal``, as one request header that
        authenticates it again elsewhere (a call another node runs for this connection: the WebSocket's
        ``?apiKey=`` becomes ``X-API-Key``); None if ``conn`` carries it no longer."""
        for kind, secret in credentials(conn, allow_query):
            if not secret:
                continue
            if principal.credential is None:  # the admin key
                if kind == "cookie" or not self.is_admin_key(secret):
                    continue
            elif hash_secret(secret) != principal.credential:
                continue
            if kind == "bearer":
                return "authorization", f"Bearer {secret}"
            if kind == "cookie":
                return "cookie", f"{SESSION_COOKIE}={secret}"
            return "x-api-key", secret
        return None

    async def authenticate(self, conn: HTTPConnection, allow_query: bool = False) -> Principal | None:
        for kind, secret in credentials(conn, allow_query):
            if not secret:
                continue
            if kind != "cookie" and self.is_admin_key(secret):
                return ADMIN
            if self.resolver is not None:
                principal = await self.resolver(hash_secret(secret), kind)
                if principal is not None:
                    return principal
        return None
