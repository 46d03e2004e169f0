"""Who is calling: the admin key, an account's API key, a bearer session token,
or the browser session cookie → a :class:`Principal`.

Keys are compared in constant time. Account credentials are looked up by their
SHA-256 hash through ``resolver`` (set when accounts are enabled), so no secret
is ever stored or compared in the clear.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

SESSION_COOKIE = "gw_session"


@dataclass(frozen=True, slots=True)
class Principal:
    is_admin: bool
    account_id: int | None = None
    username: str | None = None
    via: str = "key"  # key | session | cookie

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


class Authenticator:
    def __init__(self, admin_key: str, resolver: Resolver | None = None) -> None:
        self._admin = admin_key.encode()
        self.resolver = resolver

    def is_admin_key(self, secret: str) -> bool:
        return hmac.compare_digest(secret.encode(), self._admin)

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
