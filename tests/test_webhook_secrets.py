"""One webhook secret per tenant (issue 13 §5): each account signs with its own secret, a device may
have its own, the operator's WEBHOOK_SECRET signs only the operator's targets — verified the way a
receiver does, with the ``standardwebhooks`` package and the hex HMAC of the seed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from gateway.webhooks.keys import ROTATION_GRACE_S, AccountSecret, SigningKeys, new_secret
from tests.support.accounts import Tenant, Tenants
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.webhook_receiver import Hit, Receiver

OPERATOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SENDER = "60171222333"
DEVICE_SECRET = "whsec_" + base64.b64encode(b"a device's own 24-byte key").decode()


def verifies(secret: str, hit: Hit) -> bool:
    """Whether ``secret`` verifies ``hit`` with the standardwebhooks package."""
    try:
        Webhook(secret).verify(hit.body, hit.headers)
    except WebhookVerificationError:
        return False
    return True


def hex_ok(secret: str, hit: Hit) -> bool:
    """The seed's check: hex HMAC-SHA256 of the body keyed with the secret's UTF-8 bytes."""
    expected = hmac.new(secret.encode(), hit.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(hit.headers.get("x-webhook-signature", ""), expected)


@pytest.fixture
async def world(gateway_factory: Any, receiver: Receiver) -> AsyncIterator[tuple[Gateway, Tenant, Tenant]]:
    """The operator's WEBHOOK_URL and two accounts' own targets, all on one receiver (paths tell them apart)."""
    gw: Gateway = await gateway_factory(
        webhook_url=f"{receiver.url}/operator", webhook_secret=OPERATOR_SECRET, webhook_allow_private=True
    )
    tenants = Tenants(gw)
    alice, bob = await tenants.signup("alice"), await tenants.signup("bob")
    for tenant, token in ((alice, TOKEN), (bob, OTHER)):
        r = await tenant.http.patch("/auth/me", json={"webhookUrl": f"{receiver.url}/{tenant.username}"})
        assert r.status_code == 200, r.text
        assert (await tenant.http.post("/devices", json={"token": token})).status_code == 200
        assert (await gw.post(f"/sandbox/devices/{token}/scan")).status_code == 200
    yield gw, alice, bob
    await tenants.aclose()


async def _message(gw: Gateway, receiver: Receiver, token: str, text: str, path: str) -> Hit:
    """Send ``text`` to ``token`` and wait for its message.received at ``path``."""
    assert (await gw.post(f"/sandbox/devices/{token}/incoming", {"from": SENDER, "text": text})).status_code == 200

    def arrived(hits: list[Hit]) -> bool:
        return any(_is(h, path, text) for h in hits)

    hits = await receiver.wait(arrived)
    return next(h for h in hits if _is(h, path, text))


def _is(hit: Hit, path: str, text: str) -> bool:
    body = hit.json()
    return hit.path.endswith(path) and body["event"] == "message.received" and body["data"]["text"] == text


async def test_each_account_signs_with_its_own_secret(
    world: tuple[Gateway, Tenant, Tenant], receiver: Receiver
) -> None:
    """Alice's delivery verifies with alice's secret only: not with bob's, not with the operator's; the
    operator's copy of the same event verifies with WEBHOOK_SECRET only."""
    gw, alice, bob = world
    assert alice.webhook_secret.startswith("whsec_") and alice.webhook_secret != bob.webhook_secret
    assert len(base64.b64decode(alice.webhook_secret[6:])) == 32
    to_alice = await _message(gw, receiver, TOKEN, "for alice", "/alice")
    assert verifies(alice.webhook_secret, to_alice) and hex_ok(alice.webhook_secret, to_alice)
    for other in (bob.webhook_secret, OPERATOR_SECRET):
        assert not verifies(other, to_alice)
        assert not hex_ok(other, to_alice)
    to_operator = await _message(gw, receiver, TOKEN, "for alice", "/operator")
    assert verifies(OPERATOR_SECRET, to_operator) and hex_ok(OPERATOR_SECRET, to_operator)
    assert not verifies(alice.webhook_secret, to_operator) and not verifies(bob.webhook_secret, to_operator)
    to_bob = await _message(gw, receiver, OTHER, "for bob", "/bob")
    assert verifies(bob.webhook_secret, to_bob) and not verifies(alice.webhook_secret, to_bob)


async def test_a_device_secret_signs_its_own_url_and_is_never_shown(
    world: tuple[Gateway, Tenant, Tenant], receiver: Receiver
) -> None:
    """webhookSecret on PATCH signs deliveries to the device's own URL (the account's URL keeps the
    account's secret); responses say only webhookSecretSet; null clears it (back to the account's)."""
    gw, alice, _bob = world
    url = f"{receiver.url}/alice-device"
    r = await alice.http.patch(f"/devices/{TOKEN}", json={"webhookUrl": url, "webhookSecret": DEVICE_SECRET})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["webhookSecretSet"] is True and DEVICE_SECRET not in r.text
    for read in (await alice.http.get(f"/devices/{TOKEN}"), await alice.http.get("/devices")):
        assert DEVICE_SECRET not in read.text and DEVICE_SECRET[6:20] not in read.text
    hit = await _message(gw, receiver, TOKEN, "device signed", "/alice-device")
    assert verifies(DEVICE_SECRET, hit) and hex_ok(DEVICE_SECRET, hit)
    assert not verifies(alice.webhook_secret, hit) and not verifies(OPERATOR_SECRET, hit)
    account_copy = await _message(gw, receiver, TOKEN, "device signed", "/alice")
    assert verifies(alice.webhook_secret, account_copy) and not verifies(DEVICE_SECRET, account_copy)

    r = await alice.http.patch(f"/devices/{TOKEN}", json={"webhookSecret": None})
    assert r.status_code == 200 and r.json()["data"]["webhookSecretSet"] is False
    hit = await _message(gw, receiver, TOKEN, "account signed", "/alice-device")
    assert verifies(alice.webhook_secret, hit) and not verifies(DEVICE_SECRET, hit)


async def test_a_device_secret_can_be_given_at_creation(gateway_factory: Any, receiver: Receiver) -> None:
    """POST /devices with webhookSecret: the first delivery (device.connected) is signed with it."""
    gw: Gateway = await gateway_factory(webhook_allow_private=True)
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("alice")
        body = {"token": TOKEN, "webhookUrl": receiver.url, "webhookSecret": DEVICE_SECRET}
        r = await alice.http.post("/devices", json=body)
        assert r.status_code == 200 and DEVICE_SECRET not in r.text
        assert (await alice.http.get(f"/devices/{TOKEN}")).json()["data"]["webhookSecretSet"] is True
        await gw.post(f"/sandbox/devices/{TOKEN}/scan")
        hits = await receiver.wait(lambda hits: any(h.json()["event"] == "device.connected" for h in hits))
        assert verifies(DEVICE_SECRET, hits[0]) and not verifies(alice.webhook_secret, hits[0])
    finally:
        await tenants.aclose()


@pytest.mark.parametrize(
    "secret",
    [
        "short",
        "x" * 257,
        "has a space in it!!",
        "tab\there-is-long-enough",
        "ünïcödé-secret-long-enough",
        "whsec_!!!not-base64!!!",
        "whsec_" + base64.b64encode(b"15 bytes only!!").decode(),
        12345678901234567,
    ],
)
async def test_bad_device_secrets_are_refused(gw: Gateway, secret: Any) -> None:
    """A secret too short or long, with spaces or control or non-ASCII characters, a whsec_ secret that is
    not base64 of at least 16 bytes, or not a string → 400 INVALID_REQUEST; nothing is stored."""
    await gw.pair(TOKEN)
    r = await gw.http.patch(f"/devices/{TOKEN}", json={"webhookSecret": secret})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "INVALID_REQUEST"), r.text
    assert (await gw.http.get(f"/devices/{TOKEN}")).json()["data"]["webhookSecretSet"] is False


async def test_rotation_shows_the_new_secret_once_and_keeps_the_old_one_for_a_grace_period(
    world: tuple[Gateway, Tenant, Tenant], receiver: Receiver
) -> None:
    """POST /auth/me/webhook-secret: a new whsec_ secret; deliveries verify with the new one and, for 24 h,
    with the old one too (two v1 signatures); X-Webhook-Signature uses the new one. The admin has no
    account secret (403)."""
    gw, alice, bob = world
    r = await alice.http.post("/auth/me/webhook-secret")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    new = data["webhookSecret"]
    assert new.startswith("whsec_") and new != alice.webhook_secret and data["previousValidUntil"]
    assert new not in (await alice.http.get("/auth/me")).text
    hit = await _message(gw, receiver, TOKEN, "after rotation", "/alice")
    assert verifies(new, hit) and verifies(alice.webhook_secret, hit)
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    assert hex_ok(new, hit) and not hex_ok(alice.webhook_secret, hit)
    assert not verifies(bob.webhook_secret, hit)
    r = await gw.http.post("/auth/me/webhook-secret")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "FORBIDDEN")


def test_the_previous_secret_stops_signing_when_the_grace_period_ends() -> None:
    """SigningKeys: during the grace period two signers (new first), after it only the new one."""
    now = [1_000_000.0]
    keys = SigningKeys(OPERATOR_SECRET, clock=lambda: now[0])
    old, new = new_secret(), new_secret()
    keys.set_account(7, AccountSecret(new, old, now[0] + ROTATION_GRACE_S))
    body = b'{"event":"x"}'
    headers = keys.headers("account", 7, TOKEN, "msg_1", int(now[0]), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    now[0] += ROTATION_GRACE_S
    headers = keys.headers("account", 7, TOKEN, "msg_1", int(now[0]), body)
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert headers["X-Webhook-Signature"] == hmac.new(new.encode(), body, hashlib.sha256).hexdigest()


def test_who_signs_what() -> None:
    """The operator's secret signs the operator's target and the admin's own devices' URLs; never a
    tenant's target (an account without a secret is unsigned rather than signed with the operator's)."""
    keys = SigningKeys(OPERATOR_SECRET)
    account = new_secret()
    keys.set_account(1, AccountSecret(account))
    keys.bind_devices(lambda token: DEVICE_SECRET if token == OTHER else None)
    body = b"{}"

    def hexsig(target: str, owner: int | None, token: str) -> str | None:
        return keys.headers(target, owner, token, "msg_1", 1, body).get("X-Webhook-Signature")

    def mac(secret: str) -> str:
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    assert hexsig("operator", 1, TOKEN) == mac(OPERATOR_SECRET)
    assert hexsig("device", None, TOKEN) == mac(OPERATOR_SECRET)  # the admin's device, no secret of its own
    assert hexsig("device", None, OTHER) == mac(DEVICE_SECRET)
    assert hexsig("device", 1, TOKEN) == mac(account)
    assert hexsig("device", 1, OTHER) == mac(DEVICE_SECRET)
    assert hexsig("account", 1, TOKEN) == mac(account)
    assert hexsig("account", 2, TOKEN) is None  # no such account's secret: unsigned, not the operator's
    assert hexsig("device", 2, TOKEN) is None


async def test_accounts_from_before_secrets_get_one_at_start(gateway_factory: Any, tmp_path: Any) -> None:
    """An account stored without a secret (created before this feature) gets one when the gateway starts,
    kept across restarts."""
    gw: Gateway = await gateway_factory(data_dir=tmp_path)
    tenants = Tenants(gw)
    alice = await tenants.signup("alice")
    await tenants.aclose()
    await gw.rt.store.db.execute("UPDATE accounts SET webhook_secret = NULL WHERE id = ?", (alice.user_id,))
    await gw.rt.accounts.load()
    row = await gw.rt.store.account(alice.user_id)
    assert row.webhook_secret.startswith("whsec_") and row.webhook_secret != alice.webhook_secret
    assert gw.rt.accounts.signing.accounts[alice.user_id].current == row.webhook_secret
    await gw.stop()
    again: Gateway = await gateway_factory(data_dir=tmp_path)
    assert again.rt.accounts.signing.accounts[alice.user_id].current == row.webhook_secret
