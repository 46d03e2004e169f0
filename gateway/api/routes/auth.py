"""``/auth/*``: signup, login, logout, the account itself, its API keys, and
the admin's account management (CONTRACT §10).

``/auth/signup`` and ``/auth/login`` are open routes: the guard only records a
principal for them when a credential was sent, so they read the scope state
directly instead of ``principal()`` (which defaults to the admin).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from msgspec import UNSET
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.accounts import SESSION_TTL_S, Issued, check_signup
from gateway.api.envelope import ok
from gateway.api.errors import ApiError, invalid
from gateway.api.gate import client_address
from gateway.api.models.base import MAX_KEY_NAME
from gateway.api.models.decode import read
from gateway.api.models.requests import CreateKey, Login, Signup, WebhookTarget
from gateway.api.models.responses import (
    Account,
    AccountDeleted,
    AccountList,
    AccountWithDevices,
    ApiKey,
    ApiKeyList,
    AuthSession,
    KeyRevoked,
    NewApiKey,
    SignedOut,
    WebhookSecret,
)
from gateway.api.routes.common import checked_webhook_url, principal, require_admin, webhook_events_from
from gateway.auth import SESSION_COOKIE, Principal, credentials
from gateway.runtime import runtime
from gateway.store.accounts import AccountRow, ApiKeyRow
from gateway.timestamps import iso

SAME_SITE: Any = "Lax"  # Starlette types it lower-case; browsers and readers expect the canonical spelling

# -- who is on the other end ---------------------------------------------------------------------
# uvicorn's ProxyHeadersMiddleware (installed by gateway.app, trusting TRUSTED_PROXIES only) has already
# put the nearest untrusted X-Forwarded-For hop and the forwarded scheme into the scope.


def client_ip(conn: HTTPConnection) -> str:
    """The client's address (behind trusted proxies, the nearest untrusted hop of X-Forwarded-For)."""
    return client_address(conn.scope)


def over_https(conn: HTTPConnection) -> bool:
    """Whether the client reached us over TLS (directly, or per a trusted proxy's X-Forwarded-Proto)."""
    return conn.scope.get("scheme") in ("https", "wss")


def _open_route_principal(request: Request) -> Principal | None:
    p: Principal | None = request.scope.get("state", {}).get("principal")
    return p


def _account_principal(request: Request) -> Principal:
    p = principal(request)
    if p.is_admin or p.account_id is None:
        raise ApiError("FORBIDDEN", "the admin key has no account; use an account's key or session")
    return p


# -- shapes ---------------------------------------------------------------------------------------


def _account_data(a: AccountRow) -> Account:
    return Account(
        user_id=a.id,
        username=a.username,
        email=a.email,
        created_at=a.created_at,
        webhook_url=a.webhook_url,
        webhook_events=a.webhook_events,
    )


def _key_data(k: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=k.id, name=k.name, prefix=k.prefix, created_at=k.created_at, session_bound=k.expires_at is not None
    )


def _issued(request: Request, issued: Issued, message: str) -> Response:
    data = AuthSession(
        token=issued.token,
        user_id=issued.account.id,
        username=issued.account.username,
        api_key=issued.api_key,
        webhook_secret=issued.webhook_secret,
    )
    response = ok(data, message)
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=SESSION_TTL_S,
        path="/",
        httponly=True,
        samesite=SAME_SITE,
        secure=over_https(request),
    )
    return response


# -- signup / login / logout -------------------------------------------------------------------------


async def signup(request: Request) -> Response:
    rt = runtime(request)
    caller = _open_route_principal(request)
    is_admin = caller is not None and caller.is_admin
    if not rt.settings.allow_signup and not is_admin:
        if caller is None:
            raise ApiError("UNAUTHORIZED", "signup is closed on this gateway; it needs the admin key")
        raise ApiError("FORBIDDEN", "signup is closed on this gateway; only the admin can create accounts")
    body = await read(request, Signup)
    username, email, password = check_signup(body.username, body.email, body.password)
    accounts = rt.accounts
    if not is_admin:  # open signup hashes a password per call: same per-address budget as logins
        accounts.check_login_rate(f"addr:{client_ip(request)}")
    issued = await accounts.signup(username, email, password)
    return _issued(request, issued, "account created")


async def login(request: Request) -> Response:
    body = await read(request, Login)
    field = "email" if body.email else "username"
    value = body.email if body.email else body.username
    password = body.password
    if value is None or not value.strip():
        raise invalid("'username' or 'email' is required")
    if password is None or not password:
        raise invalid("'password' is required")
    issued = await runtime(request).accounts.login(field, value.strip(), password, client_ip(request))
    return _issued(request, issued, "signed in")


async def logout(request: Request) -> Response:
    presented = [secret for kind, secret in credentials(request) if kind in ("bearer", "cookie") and secret]
    revoked = await runtime(request).accounts.logout(presented)
    response = ok(SignedOut(revoked=revoked), "signed out")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite=SAME_SITE, secure=over_https(request))
    return response


# -- the account ---------------------------------------------------------------------------------------


async def me(request: Request) -> Response:
    p = _account_principal(request)
    account = await runtime(request).accounts.account(p.account_id or 0)
    if account is None:
        raise ApiError("UNAUTHORIZED", "this account no longer exists")
    return ok(_account_data(account), "account")


async def update_me(request: Request) -> Response:
    p = _account_principal(request)
    body = await read(request, WebhookTarget)
    accounts = runtime(request).accounts
    account = await accounts.account(p.account_id or 0)
    if account is None:
        raise ApiError("UNAUTHORIZED", "this account no longer exists")
    url, events = account.webhook_url, account.webhook_events
    if body.webhook_url is not UNSET:
        url = await checked_webhook_url(request, body.webhook_url, tenant=True)
    if body.webhook_events is not UNSET:
        events = webhook_events_from(body.webhook_events)
    updated = await accounts.set_webhook(account.id, url, events)
    return ok(_account_data(updated), "account updated")


async def rotate_webhook_secret(request: Request) -> Response:
    """``POST /auth/me/webhook-secret``: a new signing secret for the account's deliveries, shown once."""
    p = _account_principal(request)
    rotated = await runtime(request).accounts.rotate_webhook_secret(p.account_id or 0)
    until = rotated.previous_valid_until
    data = WebhookSecret(
        webhook_secret=rotated.secret,
        previous_valid_until=iso(datetime.fromtimestamp(until, UTC)) if until is not None else None,
    )
    return ok(data, "webhook secret rotated; it is shown only once")


# -- keys ------------------------------------------------------------------------------------------------


async def create_key(request: Request) -> Response:
    p = _account_principal(request)
    body = await read(request, CreateKey)
    name = body.name
    if name is None or not name.strip() or len(name) > MAX_KEY_NAME:
        raise invalid(f"'name' must be 1 to {MAX_KEY_NAME} characters")
    new = await runtime(request).accounts.create_key(p.account_id or 0, name.strip())
    k = new.row
    data = NewApiKey(
        id=k.id,
        name=k.name,
        prefix=k.prefix,
        created_at=k.created_at,
        session_bound=k.expires_at is not None,
        key=new.key,
    )
    return ok(data, "API key created; it is shown only once")


async def list_keys(request: Request) -> Response:
    p = _account_principal(request)
    keys = await runtime(request).accounts.keys(p.account_id or 0)
    return ok(ApiKeyList(keys=[_key_data(k) for k in keys]), "API keys")


def _path_id(request: Request) -> int:
    raw = request.path_params.get("id", "")
    if not raw.isdigit() or len(raw) > 18:
        raise invalid("'id' must be a whole number")
    return int(raw)


async def delete_key(request: Request) -> Response:
    p = _account_principal(request)
    key_id = _path_id(request)
    if not await runtime(request).accounts.revoke_key(p.account_id or 0, key_id):
        raise ApiError("NOT_FOUND", "no such API key")
    return ok(KeyRevoked(id=key_id, revoked=True), "API key revoked")


# -- account management (admin) --------------------------------------------------------------------------


async def list_accounts(request: Request) -> Response:
    require_admin(request)
    rt = runtime(request)
    accounts = await rt.accounts.all_accounts()
    data = [
        AccountWithDevices(
            user_id=a.id,
            username=a.username,
            email=a.email,
            created_at=a.created_at,
            webhook_url=a.webhook_url,
            webhook_events=a.webhook_events,
            device_count=len(rt.devices.visible(a.id, False)),
        )
        for a in accounts
    ]
    return ok(AccountList(accounts=data, count=len(data)), "accounts")


async def delete_account(request: Request) -> Response:
    require_admin(request)
    account_id = _path_id(request)
    removed = await runtime(request).accounts.delete_account(account_id)
    if removed is None:
        raise ApiError("NOT_FOUND", "no such account")
    return ok(AccountDeleted(user_id=account_id, deleted=True, devices_removed=removed), "account deleted")


routes = [
    Route("/auth/signup", signup, methods=["POST"]),
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/auth/me", me, methods=["GET"]),
    Route("/auth/me", update_me, methods=["PATCH"]),
    Route("/auth/me/webhook-secret", rotate_webhook_secret, methods=["POST"]),
    Route("/auth/keys", create_key, methods=["POST"]),
    Route("/auth/keys", list_keys, methods=["GET"]),
    Route("/auth/keys/{id}", delete_key, methods=["DELETE"]),
    Route("/auth/accounts", list_accounts, methods=["GET"]),
    Route("/auth/accounts/{id}", delete_account, methods=["DELETE"]),
]
