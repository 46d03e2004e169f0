"""Webhook secrets in the console (issue 13 §5, issue 18): the device's secret in the Settings tab
(generate / set, shown only as "set" or "not set", remove) and an account rotating its own secret in
the deliveries view (shown once). Each secret is proven real by a delivery that verifies with it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from standardwebhooks import Webhook

from tests.support.net import free_port
from tests.support.webhook_receiver import Hit, Receiver

from .conftest import DESKTOP, GatewayProcess
from .test_operator_console import connected_device, open_device, snap_variants
from .test_pairing_page import sign_in

pytestmark = pytest.mark.browser
SENDER = "60173000031"
WHSEC = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")  # base64 of 32 bytes


async def _delivery(api: httpx.AsyncClient, receiver: Receiver, token: str, text: str) -> Hit:
    r = await api.post(f"/sandbox/devices/{token}/incoming", json={"from": SENDER, "text": text})
    assert r.status_code == 200, r.text

    def arrived(hits: list[Hit]) -> bool:
        return any(h.json()["event"] == "message.received" and h.json()["data"]["text"] == text for h in hits)

    hits = await receiver.wait(arrived, timeout=15)
    return next(h for h in hits if h.json()["event"] == "message.received" and h.json()["data"]["text"] == text)


async def test_device_secret_is_set_generated_and_removed_but_never_shown(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """Settings → Generate fills a whsec_ secret; saved, the form says "set" and forgets it (the page never
    shows it again); deliveries verify with it; a short secret is refused; Remove → "not set"."""
    receiver = await Receiver(free_port()).start()
    try:
        token = "60123456807"
        await connected_device(api, token, "Signed")
        page = await new_page(DESKTOP)
        await sign_in(page, gateway)
        await open_device(page, token)
        await page.get_by_role("tab", name="Settings").click()
        await expect(page.locator("#set-secret-state")).to_have_text("not set")
        await expect(page.get_by_role("button", name="Remove the device's secret")).to_be_hidden()

        await page.get_by_label("Webhook URL (optional)").fill(receiver.url)
        await page.get_by_label("New secret (optional)").fill("too-short")
        await page.get_by_role("button", name="Save settings").click()
        await expect(page.locator("#settings-error")).to_contain_text("at least 16 characters")
        await expect(page.get_by_label("New secret (optional)")).to_have_attribute("aria-invalid", "true")

        await page.get_by_role("button", name="Generate").click()
        secret = await page.get_by_label("New secret (optional)").input_value()
        assert secret.startswith("whsec_") and len(secret) == 6 + 44
        await page.get_by_role("button", name="Save settings").click()
        await expect(page.locator("#settings-result")).to_have_text("Saved.")
        await expect(page.locator("#set-secret-state")).to_have_text("set")
        await expect(page.get_by_label("New secret (optional)")).to_have_value("")
        assert secret not in await page.content()
        state = (await api.get(f"/devices/{token}")).json()["data"]
        assert state["webhookSecretSet"] is True and secret not in str(state)
        await snap_variants(page, "device-secret")

        hit = await _delivery(api, receiver, token, "signed by the device")
        Webhook(secret).verify(hit.body, hit.headers)

        await page.get_by_role("button", name="Remove the device's secret").click()
        await expect(page.locator("#settings-result")).to_have_text("Secret removed.")
        await expect(page.locator("#set-secret-state")).to_have_text("not set")
        assert (await api.get(f"/devices/{token}")).json()["data"]["webhookSecretSet"] is False
    finally:
        await receiver.stop()


async def test_an_account_rotates_its_secret_and_sees_it_once(
    spawn_gateway: Callable[..., GatewayProcess], new_page: Any
) -> None:
    """Signed in with an account key, the deliveries view offers "Rotate account secret": confirmed, the
    new secret is shown once and verifies the account's next delivery; the admin key has no such button."""
    receiver = await Receiver(free_port()).start()
    gw = spawn_gateway(WEBHOOK_ALLOW_PRIVATE="true")
    token = "60123456808"
    try:
        async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=10) as admin:
            body = {"username": "shop", "email": "shop@example.com", "password": "correct horse battery"}
            signup = (await admin.post("/auth/signup", json=body)).json()["data"]
            key, first = signup["apiKey"], signup["webhookSecret"]
            async with httpx.AsyncClient(base_url=gw.base_url, headers={"X-API-Key": key}, timeout=10) as shop:
                assert (await shop.patch("/auth/me", json={"webhookUrl": receiver.url})).status_code == 200
                assert (await shop.post("/devices", json={"token": token})).status_code == 200
            assert (await admin.post(f"/sandbox/devices/{token}/scan")).status_code == 200

            page = await new_page(DESKTOP)
            await sign_in(page, gw, key)
            await expect(page.locator("#whoami")).to_contain_text("shop")
            await page.get_by_role("link", name="Webhook deliveries").click()
            rotate = page.get_by_role("button", name="Rotate account secret")
            await expect(rotate).to_be_visible()
            page.once("dialog", lambda dialog: dialog.accept())
            await rotate.click()
            shown = page.get_by_label("New account secret — shown only now")
            await expect(shown).to_have_value(WHSEC)
            new = await shown.input_value()
            assert new != first
            await expect(page.locator("#account-secret-until")).to_contain_text("previous secret keeps signing")
            await snap_variants(page, "account-secret")

            hit = await _delivery(admin, receiver, token, "after rotation")
            Webhook(new).verify(hit.body, hit.headers)
            Webhook(first).verify(hit.body, hit.headers)  # the grace period: both sign for 24 h

            await page.locator('a[data-section="devices"]').click()
            await page.get_by_role("link", name="Webhook deliveries").click()
            await expect(page.locator("#account-secret-new")).to_be_hidden()  # shown once, then forgotten

            admin_page = await new_page(DESKTOP)
            await sign_in(admin_page, gw)
            await expect(admin_page.locator("#whoami")).to_contain_text("admin")
            await admin_page.get_by_role("link", name="Webhook deliveries").click()
            await expect(admin_page.get_by_role("heading", name="Webhook deliveries")).to_be_visible()
            await expect(admin_page.get_by_role("button", name="Rotate account secret")).to_be_hidden()
    finally:
        await receiver.stop()
