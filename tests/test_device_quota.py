"""Issue 13 §7 (second half): ACCOUNT_MAX_DEVICES — an account may hold that many devices; the admin
is unlimited; reopening a device it holds is not a new one."""

from __future__ import annotations

from typing import Any

from gateway.settings import Settings
from tests.support.accounts import Tenants


async def test_an_account_beyond_its_quota_is_403(gateway_factory: Any) -> None:
    gw = await gateway_factory(account_max_devices=2)
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("alice")
        bob = await tenants.signup("bob")
        for token in ("60123456789", "60198765432"):
            assert (await alice.http.post("/devices", json={"token": token})).status_code == 200
        third = await alice.http.post("/devices", json={"token": "60171222333"})
        assert (third.status_code, third.json()["error"]["code"]) == (403, "QUOTA_EXCEEDED")
        assert gw.rt.devices.get("60171222333") is None
        # Reopening one it holds is fine; another account has its own quota; the admin has none.
        assert (await alice.http.post("/devices", json={"token": "60123456789"})).status_code == 200
        assert (await bob.http.post("/devices", json={"token": "60171222333"})).status_code == 200
        for token in ("60133334444", "60127654321", "60176543210"):
            assert (await gw.post("/devices", {"token": token})).status_code == 200
        # Deleting one frees a place.
        assert (await alice.http.delete("/devices/60198765432")).status_code == 200
        assert (await alice.http.post("/devices", json={"token": "60133335555"})).status_code == 200
    finally:
        await tenants.aclose()


def test_the_default_quota_is_ten_and_zero_means_none() -> None:
    assert Settings.from_env({}, dotenv=False).account_max_devices == 10
    assert Settings.from_env({"ACCOUNT_MAX_DEVICES": "0"}, dotenv=False).account_max_devices == 0


async def test_zero_turns_the_quota_off(gateway_factory: Any) -> None:
    gw = await gateway_factory(account_max_devices=0)
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("alice")
        for token in ("60123456789", "60198765432", "60171222333"):
            assert (await alice.http.post("/devices", json={"token": token})).status_code == 200
    finally:
        await tenants.aclose()
