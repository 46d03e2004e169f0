"""Accounts (CONTRACT §10): signup, login, logout, cookies, sessions, API keys,
the account's own webhook target, and the admin's account management.

``Tenants`` (tests/support/accounts.py) creates the accounts; the ``tenants`` fixture is in conftest.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest
import websockets

from gateway.accounts import SESSION_TTL_S, Accounts
from tests.support.accounts import PASSWORD, Tenants
from tests.support.constants import TOKEN
from tests.support.gateway import Gateway


def cookie_attrs(response: httpx.Response) -> dict[str, str]:
    """The gw_session Set-Cookie header as {attribute (lower-case): value}."""
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith("gw_session="))
    parts = [p.strip() for p in header.split(";")]
    out = {"value": parts[0].split("=", 1)[1]}
    for p in parts[1:]:
        name, _, value = p.partition("=")
        out[name.lower()] = value
    return out


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# -- signup ----------------------------------------------------------------------------------


async def test_signup_closed_needs_the_admin_key(gw: Gateway, tenants: Tenants) -> None:
    """ALLOW_SIGNUP=false: anonymous → 401, an account → 403, the admin key → the account."""
    body = {"username": "carol", "email": "carol@example.com", "password": PASSWORD}
    assert error(await gw.anon.post("/auth/signup", json=body)) == (401, "UNAUTHORIZED")
    alice = await tenants.signup("alice")
    assert error(await alice.http.post("/auth/signup", json=body)) == (403, "FORBIDDEN")
    r = await gw.http.post("/auth/signup", json=body)
    assert r.status_code == 200
    data = r.json()["data"]
    assert set(data) == {"token", "userId", "username", "apiKey", "webhookSecret"}
    assert data["webhookSecret"].startswith("whsec_")  # shown once, at creation (issue 13 §5)
    assert data["username"] == "carol" and data["userId"] != alice.user_id
    assert cookie_attrs(r)["value"] == data["token"]


async def test_signup_open_when_allowed(gateway_factory: Any) -> None:
    """ALLOW_SIGNUP=true: anyone signs up; the token, the API key and the cookie each authenticate."""
    gw = await gateway_factory(allow_signup=True)
    body = {"username": "dave.o-k_1", "email": "dave@example.com", "password": PASSWORD}
    r = await gw.anon.post("/auth/signup", json=body)
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    async with gw.client() as c:
        for headers in (
            {"Authorization": f"Bearer {d['token']}"},
            {"X-API-Key": d["apiKey"]},
            {"Authorization": f"Bearer {d['apiKey']}"},
            {"Cookie": f"gw_session={d['token']}"},
        ):
            me = await c.get("/auth/me", headers=headers)
            assert me.status_code == 200, (headers, me.text)
            assert me.json()["data"]["username"] == "dave.o-k_1"


async def test_signup_validates_and_refuses_duplicates(gw: Gateway, tenants: Tenants) -> None:
    """Bad username/email/password, wrong types, non-JSON and duplicates (any case) → INVALID_REQUEST."""
    await tenants.signup("alice")
    good = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
    bad = [
        {**good, "username": "ab"},
        {**good, "username": "x" * 33},
        {**good, "username": "bob smith"},
        {**good, "username": "bob@home"},
        {**good, "email": "not-an-email"},
        {**good, "email": "a@b"},
        {**good, "password": "short7!"},
        {**good, "password": 12345678},
        {"email": "bob@example.com", "password": PASSWORD},
        {**good, "username": "ALICE"},
        {**good, "email": "Alice@Example.com"},
    ]
    for body in bad:
        r = await gw.http.post("/auth/signup", json=body)
        assert error(r) == (400, "INVALID_REQUEST"), body
    dup = await gw.http.post("/auth/signup", json={**good, "username": "Alice"})
    assert "already registered" in dup.json()["error"]["message"]
    r = await gw.http.post("/auth/signup", content=b"{nope", headers={"Content-Type": "application/json"})
    assert error(r) == (400, "INVALID_REQUEST")
    assert (await gw.http.post("/auth/signup", json=good)).status_code == 200


async def test_passwords_keys_and_sessions_are_stored_hashed(gw: Gateway, tenants: Tenants) -> None:
    """The store holds an argon2id hash, and SHA-256 digests of the key and session token — never the secrets."""
    alice = await tenants.signup("alice")
    db = gw.rt.store.db
    row = await db.fetchone("SELECT password_hash FROM accounts WHERE id = ?", (alice.user_id,))
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    key = await db.fetchone("SELECT key_hash, prefix FROM api_keys WHERE account_id = ?", (alice.user_id,))
    assert key["key_hash"] == hashlib.sha256(alice.api_key.encode()).hexdigest()
    assert alice.api_key.startswith(key["prefix"]) and len(key["prefix"]) < len(alice.api_key) // 2
    session = await db.fetchone("SELECT token_hash FROM auth_sessions WHERE account_id = ?", (alice.user_id,))
    assert session["token_hash"] == hashlib.sha256(alice.token.encode()).hexdigest()


# -- login / logout / cookies ---------------------------------------------------------------------


async def test_login_by_username_or_email_sets_session_cookie(gw: Gateway, tenants: Tenants) -> None:
    """Login by username or email (any case) → the signup response shape and an HttpOnly, Lax, 7-day cookie."""
    alice = await tenants.signup("alice")
    for body in ({"username": "alice", "password": PASSWORD}, {"email": "ALICE@example.com", "password": PASSWORD}):
        r = await gw.anon.post("/auth/login", json=body)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert set(data) == {"token", "userId", "username", "apiKey", "webhookSecret"}
        assert data["webhookSecret"] is None  # the secret is shown at signup and rotation only
        assert data["userId"] == alice.user_id and data["username"] == "alice"
        attrs = cookie_attrs(r)
        assert attrs["value"] == data["token"]
        assert "httponly" in attrs and attrs["samesite"] == "Lax" and attrs["path"] == "/"
        assert attrs["max-age"] == str(7 * 24 * 3600)
        assert "secure" not in attrs  # plain http, no proxy header
        key_client = tenants.client(**{"X-API-Key": data["apiKey"]})
        assert (await key_client.get("/devices")).status_code == 200


async def test_login_gives_one_answer_for_unknown_user_and_wrong_password(gw: Gateway, tenants: Tenants) -> None:
    """Unknown user and wrong password answer the same 401 and message; missing fields → INVALID_REQUEST."""
    await tenants.signup("alice")
    wrong = await gw.anon.post("/auth/login", json={"username": "alice", "password": "wrong password"})
    unknown = await gw.anon.post("/auth/login", json={"username": "nobody", "password": "wrong password"})
    unknown_mail = await gw.anon.post("/auth/login", json={"email": "no@example.com", "password": PASSWORD})
    assert error(wrong) == error(unknown) == error(unknown_mail) == (401, "UNAUTHORIZED")
    messages = {r.json()["error"]["message"] for r in (wrong, unknown, unknown_mail)}
    assert len(messages) == 1
    assert "set-cookie" not in wrong.headers
    for body in ({"username": "alice"}, {"password": PASSWORD}, {"username": 5, "password": PASSWORD}):
        assert error(await gw.anon.post("/auth/login", json=body)) == (400, "INVALID_REQUEST")


async def test_cookie_is_secure_behind_https_from_a_trusted_proxy(gw: Gateway, tenants: Tenants) -> None:
    """X-Forwarded-Proto: https from a trusted proxy (127.0.0.1 by default) → Secure cookie."""
    await tenants.signup("alice")
    r = await gw.anon.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD}, headers={"X-Forwarded-Proto": "https"}
    )
    assert "secure" in cookie_attrs(r)
    logout = await gw.anon.post(
        "/auth/logout", headers={"Authorization": f"Bearer {r.json()['data']['token']}", "X-Forwarded-Proto": "https"}
    )
    assert "secure" in cookie_attrs(logout)


async def test_forwarded_proto_is_ignored_from_an_untrusted_peer(gateway_factory: Any) -> None:
    """TRUSTED_PROXIES not naming the peer: X-Forwarded-Proto does not make the cookie Secure."""
    gw = await gateway_factory(trusted_proxies=("10.9.8.7",))
    body = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    r = await gw.http.post("/auth/signup", json=body, headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 200
    assert "secure" not in cookie_attrs(r)


async def test_logout_revokes_the_session_and_clears_the_cookie(gw: Gateway, tenants: Tenants) -> None:
    """After logout the session token, its cookie and the key minted at login are refused at once;
    the account's other keys keep working."""
    alice = await tenants.signup("alice")
    r = await gw.anon.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    token, login_key = r.json()["data"]["token"], r.json()["data"]["apiKey"]
    bearer = tenants.client(Authorization=f"Bearer {token}")
    cookie = tenants.client(Cookie=f"gw_session={token}", Origin=gw.base)  # a cookie POST names its origin
    keyed = tenants.client(**{"X-API-Key": login_key})
    for c in (bearer, cookie, keyed):
        assert (await c.get("/auth/me")).status_code == 200  # also warms the resolver cache
    out = await cookie.post("/auth/logout")
    assert out.status_code == 200 and out.json()["data"]["revoked"] == 1
    cleared = cookie_attrs(out)
    assert cleared["value"] in ("", '""') and cleared["max-age"] == "0"
    for c in (bearer, cookie, keyed):
        assert error(await c.get("/auth/me")) == (401, "UNAUTHORIZED")
    assert (await alice.http.get("/auth/me")).status_code == 200
    # The signup session is separate and still alive.
    assert (await tenants.client(Authorization=f"Bearer {alice.token}").get("/devices")).status_code == 200


async def test_session_expires_after_seven_days(gw: Gateway, tenants: Tenants) -> None:
    """With the service clock moved 7 days on, the session token is refused (even from the cache)."""
    alice = await tenants.signup("alice")
    bearer = tenants.client(Authorization=f"Bearer {alice.token}")
    assert (await bearer.get("/devices")).status_code == 200
    accounts: Accounts = gw.rt.accounts
    accounts.clock = lambda: time.time() + SESSION_TTL_S + 1
    assert error(await bearer.get("/devices")) == (401, "UNAUTHORIZED")
    assert (await alice.http.get("/devices")).status_code == 200  # API keys do not expire


@pytest.mark.live  # a WebSocket
async def test_cookie_and_bearer_authenticate_the_websocket(gw: Gateway, tenants: Tenants) -> None:
    """The WebSocket takes the session cookie, a bearer session token and ?apiKey=; `connected`
    and `whoami` name the account."""
    alice = await tenants.signup("alice")
    for headers, query in (
        ({"Cookie": f"gw_session={alice.token}", "Origin": gw.base}, ""),  # as a browser sends it
        ({"Authorization": f"Bearer {alice.token}"}, ""),
        ({}, f"?apiKey={alice.api_key}"),
    ):
        ws = await tenants.ws(headers, query)
        connected = ws.frames[0]
        assert connected["event"] == "connected"
        assert connected["data"]["userId"] == alice.user_id and connected["data"]["username"] == "alice"
        await ws.send("whoami")
        who = await ws.event("whoami")
        assert who["data"]["userId"] == alice.user_id and who["data"]["isAdmin"] is False
        await ws.close()
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(
            f"ws://127.0.0.1:{gw.settings.port}/ws", additional_headers={"Cookie": "gw_session=gws_forged"}
        )


# -- the account and its webhook ------------------------------------------------------------------


async def test_me_shows_and_patches_the_account_webhook(gw: Gateway, tenants: Tenants) -> None:
    """GET/PATCH /auth/me: the account's own webhook target, used by the router for its devices only."""
    alice = await tenants.signup("alice")
    bob = await tenants.signup("bob")
    me = (await alice.http.get("/auth/me")).json()["data"]
    assert me == {
        "userId": alice.user_id,
        "username": "alice",
        "email": "alice@example.com",
        "createdAt": me["createdAt"],
        "webhookUrl": None,
        "webhookEvents": None,
    }
    r = await alice.http.patch(
        "/auth/me", json={"webhookUrl": "https://93.184.215.14/hook", "webhookEvents": ["message.received"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["webhookUrl"] == "https://93.184.215.14/hook"
    assert r.json()["data"]["webhookEvents"] == ["message.received"]
    router = gw.rt.router
    assert router.account_target(alice.user_id) == ("https://93.184.215.14/hook", frozenset({"message.received"}))
    assert router.account_target(bob.user_id) is None
    r = await alice.http.patch("/auth/me", json={"webhookEvents": None})
    assert r.json()["data"]["webhookUrl"] == "https://93.184.215.14/hook" and r.json()["data"]["webhookEvents"] is None
    assert router.account_target(alice.user_id) == ("https://93.184.215.14/hook", None)
    for bad in ({"webhookEvents": ["nope"]}, {"webhookUrl": "ftp://x.example/"}, {"webhookUrl": 5}):
        assert error(await alice.http.patch("/auth/me", json=bad)) == (400, "INVALID_REQUEST")
    r = await alice.http.patch("/auth/me", json={"webhookUrl": None})
    assert r.json()["data"]["webhookUrl"] is None and router.account_target(alice.user_id) is None


async def test_private_webhook_urls_are_refused_for_accounts(gw: Gateway, tenants: Tenants) -> None:
    """Loopback, private, link-local and local names are refused on the account and on its devices."""
    alice = await tenants.signup("alice")
    await alice.http.post("/devices", json={"token": TOKEN})
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.10/hook",
        "http://172.16.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ):
        r = await alice.http.patch("/auth/me", json={"webhookUrl": url})
        assert error(r) == (400, "INVALID_REQUEST"), url
        r = await alice.http.patch(f"/devices/{TOKEN}", json={"webhookUrl": url})
        assert error(r) == (400, "INVALID_REQUEST"), url
    assert gw.rt.router.account_target(alice.user_id) is None


async def test_private_webhook_urls_allowed_when_configured(gateway_factory: Any) -> None:
    """WEBHOOK_ALLOW_PRIVATE=true lets an account point its webhook at a private address."""
    gw = await gateway_factory(webhook_allow_private=True)
    r = await gw.http.post("/auth/signup", json={"username": "alice", "email": "a@example.com", "password": PASSWORD})
    key = r.json()["data"]["apiKey"]
    r = await gw.anon.patch("/auth/me", json={"webhookUrl": "http://127.0.0.1:9/hook"}, headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json()["data"]["webhookUrl"] == "http://127.0.0.1:9/hook"


async def test_admin_key_has_no_account(gw: Gateway) -> None:
    """/auth/me and /auth/keys need an account: the admin key gets FORBIDDEN."""
    for method, path in (("GET", "/auth/me"), ("PATCH", "/auth/me"), ("GET", "/auth/keys"), ("POST", "/auth/keys")):
        r = await gw.http.request(method, path, json={"name": "x"})
        assert error(r) == (403, "FORBIDDEN"), path
    assert error(await gw.http.delete("/auth/keys/1")) == (403, "FORBIDDEN")


# -- API keys -------------------------------------------------------------------------------------


async def test_keys_are_created_listed_and_revoked_at_once(gw: Gateway, tenants: Tenants) -> None:
    """A new key is shown once, listed without secrets, and refused on the very next request once deleted."""
    alice = await tenants.signup("alice")
    bob = await tenants.signup("bob")
    r = await alice.http.post("/auth/keys", json={"name": "crm"})
    assert r.status_code == 200, r.text
    new = r.json()["data"]
    assert {"id", "name", "key", "prefix", "createdAt"} <= set(new) and new["name"] == "crm"
    assert new["key"].startswith(new["prefix"])
    listed = (await alice.http.get("/auth/keys")).json()["data"]["keys"]
    assert [k["name"] for k in listed] == ["default", "crm"]
    assert all("key" not in k and new["key"] not in str(k) for k in listed)
    assert (await bob.http.get("/auth/keys")).json()["data"]["keys"][0]["name"] == "default"
    crm = tenants.client(Authorization=f"Bearer {new['key']}")
    assert (await crm.get("/devices")).status_code == 200  # cached now
    assert error(await bob.http.delete(f"/auth/keys/{new['id']}")) == (404, "NOT_FOUND")
    assert (await crm.get("/devices")).status_code == 200
    r = await alice.http.delete(f"/auth/keys/{new['id']}")
    assert r.status_code == 200 and r.json()["data"] == {"id": new["id"], "revoked": True}
    assert error(await crm.get("/devices")) == (401, "UNAUTHORIZED")
    assert error(await alice.http.delete(f"/auth/keys/{new['id']}")) == (404, "NOT_FOUND")
    assert error(await alice.http.delete("/auth/keys/abc")) == (400, "INVALID_REQUEST")
    for bad in ({}, {"name": ""}, {"name": "x" * 65}, {"name": 3}):
        assert error(await alice.http.post("/auth/keys", json=bad)) == (400, "INVALID_REQUEST")


# -- account management ---------------------------------------------------------------------------


async def test_account_management_is_admin_only(gw: Gateway, tenants: Tenants) -> None:
    """The admin lists and deletes accounts (their devices and keys go too); accounts get FORBIDDEN."""
    alice = await tenants.signup("alice")
    bob = await tenants.signup("bob")
    assert (await alice.http.post("/devices", json={"token": TOKEN})).status_code == 200
    assert error(await alice.http.get("/auth/accounts")) == (403, "FORBIDDEN")
    assert error(await alice.http.delete(f"/auth/accounts/{bob.user_id}")) == (403, "FORBIDDEN")
    listed = (await gw.http.get("/auth/accounts")).json()["data"]
    assert [(a["username"], a["deviceCount"]) for a in listed["accounts"]] == [("alice", 1), ("bob", 0)]
    assert all("password" not in str(a).lower() for a in listed["accounts"])
    r = await gw.http.delete(f"/auth/accounts/{alice.user_id}")
    assert r.status_code == 200 and r.json()["data"]["devicesRemoved"] == [TOKEN]
    assert error(await alice.http.get("/devices")) == (401, "UNAUTHORIZED")
    assert error(await gw.http.get(f"/devices/{TOKEN}")) == (404, "DEVICE_NOT_FOUND")
    assert error(await gw.http.delete(f"/auth/accounts/{alice.user_id}")) == (404, "NOT_FOUND")
    assert error(await gw.http.delete("/auth/accounts/x1")) == (400, "INVALID_REQUEST")
    assert (await bob.http.get("/auth/me")).status_code == 200
