"""Login rate limits: per client address and per account, checked before any
password hashing, so a flood of guesses is cheap to refuse and never holds up
other users. Client addresses come from X-Forwarded-For only via a trusted
proxy (127.0.0.1 is trusted by default, so these tests can play many clients).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Literal

from argon2 import PasswordHasher

from gateway.accounts import LOGIN_ATTEMPTS_PER_MINUTE, Accounts
from gateway.ratelimit import RateLimiter
from tests.support.accounts import PASSWORD, Tenants
from tests.support.gateway import Gateway


class CountingHasher(PasswordHasher):
    """The service's hasher, counting verifications (how many guesses reached argon2)."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=19 * 1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


def login(gw: Gateway, username: str, password: str, address: str) -> Any:
    return gw.anon.post(
        "/auth/login", json={"username": username, "password": password}, headers={"X-Forwarded-For": address}
    )


async def test_a_thousand_wrong_passwords_are_limited_without_blocking_others(gw: Gateway, tenants: Tenants) -> None:
    """1000 concurrent guesses from one address: at most the limit reach the hasher, the rest get 429 with
    Retry-After; meanwhile another user logs in and the gateway keeps answering."""
    await tenants.signup("alice")
    await tenants.signup("bob")
    accounts: Accounts = gw.rt.accounts
    hasher = CountingHasher()
    accounts.hasher = hasher
    gate = asyncio.Semaphore(8)
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()

    async def guess(i: int) -> None:
        async with gate:
            r = await login(gw, "alice", f"guess-{i}", "198.51.100.7")
        statuses[r.status_code] += 1
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "RATE_LIMITED"
            retry_after.add(r.headers["retry-after"])

    flood = asyncio.gather(*(guess(i) for i in range(1000)))
    bob = await login(gw, "bob", PASSWORD, "203.0.113.20")
    health = await gw.anon.get("/health/ready")
    await flood
    assert bob.status_code == 200, bob.text
    assert health.status_code == 200
    assert statuses[429] >= 1000 - 2 * LOGIN_ATTEMPTS_PER_MINUTE
    assert statuses[401] + statuses[429] == 1000
    assert 0 < hasher.verified <= 2 * LOGIN_ATTEMPTS_PER_MINUTE + 1  # + bob's
    assert all(int(s) >= 1 for s in retry_after)
    again = await login(gw, "bob", PASSWORD, "203.0.113.21")
    assert again.status_code == 200


async def test_account_limit_holds_across_addresses(gw: Gateway, tenants: Tenants) -> None:
    """Guesses on one account from many addresses: after the limit even the right password gets 429;
    other accounts are unaffected."""
    await tenants.signup("alice")
    await tenants.signup("bob")
    for i in range(LOGIN_ATTEMPTS_PER_MINUTE):
        r = await login(gw, "alice", "wrong password", f"198.51.100.{i + 1}")
        assert r.status_code == 401
    r = await login(gw, "alice", PASSWORD, "198.51.100.200")
    assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
    assert int(r.headers["retry-after"]) >= 1
    # By email it is the same account and the same budget.
    r = await gw.anon.post("/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
    assert r.status_code == 429
    assert (await login(gw, "bob", PASSWORD, "198.51.100.201")).status_code == 200


async def test_limit_window_passes_with_the_clock(gw: Gateway, tenants: Tenants) -> None:
    """With an injected clock, the limit lifts once the rolling minute has passed."""
    await tenants.signup("alice")
    now = [1_000_000.0]
    accounts: Accounts = gw.rt.accounts
    accounts.login_limiter = RateLimiter(LOGIN_ATTEMPTS_PER_MINUTE, clock=lambda: now[0])
    for _ in range(LOGIN_ATTEMPTS_PER_MINUTE):
        assert (await login(gw, "alice", "wrong password", "198.51.100.9")).status_code == 401
    assert (await login(gw, "alice", PASSWORD, "198.51.100.9")).status_code == 429
    now[0] += 121
    assert (await login(gw, "alice", PASSWORD, "198.51.100.9")).status_code == 200


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(gateway_factory: Any) -> None:
    """TRUSTED_PROXIES=empty: a made-up X-Forwarded-For does not buy a fresh address budget."""
    gw = await gateway_factory(trusted_proxies=())
    body = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    assert (await gw.http.post("/auth/signup", json=body)).status_code == 200
    codes = []
    for i in range(LOGIN_ATTEMPTS_PER_MINUTE + 1):
        r = await login(gw, f"nobody{i}", "wrong password", f"198.51.100.{i + 1}")
        codes.append(r.status_code)
    assert codes[:-1] == [401] * LOGIN_ATTEMPTS_PER_MINUTE and codes[-1] == 429


async def test_open_signup_is_limited_per_address(gateway_factory: Any) -> None:
    """ALLOW_SIGNUP=true: signups share the per-address budget (each hashes a password); the admin is exempt."""
    gw = await gateway_factory(allow_signup=True)
    codes = []
    async with gw.client(headers={"X-Forwarded-For": "198.51.100.50"}) as c:
        for i in range(LOGIN_ATTEMPTS_PER_MINUTE + 1):
            r = await c.post(
                "/auth/signup", json={"username": f"user{i}", "email": f"u{i}@example.com", "password": PASSWORD}
            )
            codes.append(r.status_code)
    assert codes[:-1] == [200] * LOGIN_ATTEMPTS_PER_MINUTE and codes[-1] == 429
    body = {"username": "admins", "email": "admins@example.com", "password": PASSWORD}
    r = await gw.http.post("/auth/signup", json=body, headers={"X-Forwarded-For": "198.51.100.50"})
    assert r.status_code == 200
