"""The operator's console at ``/`` (issue 18): device search and filter at scale, per-device tabs
(overview, contacts, settings) that reset on a device switch, the webhook deliveries log, and receipts
that read as people read them. Each view is photographed at desktop and phone widths, light and dark.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.support.poll import until

from .conftest import DESKTOP, PHONE, GatewayProcess, snap
from .test_pairing_page import assert_no_horizontal_scroll, sign_in

pytestmark = pytest.mark.browser


async def snap_variants(page: Any, name: str) -> None:
    """Screenshots at desktop and phone widths, light and dark; none may scroll sideways."""
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(viewport)
            await assert_no_horizontal_scroll(page)
            await snap(page, f"console-{label}-{scheme}-{name}")
    await page.emulate_media(color_scheme="light")
    await page.set_viewport_size(DESKTOP)


async def connected_device(api: httpx.AsyncClient, token: str, name: str) -> None:
    created = await api.post("/devices", json={"token": token, "name": name})
    assert created.status_code == 200, created.text
    scanned = await api.post(f"/sandbox/devices/{token}/scan")
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["data"]["status"] == "connected"


async def open_device(page: Any, token: str) -> None:
    await page.locator(f'#device-list [data-token="{token}"]').click()
    await expect(page.locator("#d-token, #detail-title").filter(has_text=token).first).to_be_visible()


async def test_hundreds_of_devices_are_searchable_and_filterable(
    spawn_gateway: Callable[..., GatewayProcess], new_page: Any
) -> None:
    """300 devices: the list shows them all, search narrows by name, the status filter by status."""
    gw = spawn_gateway(SANDBOX_QR_INTERVAL_MS="600000")
    total = 300
    async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=30) as api:
        gate = asyncio.Semaphore(16)

        async def add(i: int) -> None:
            async with gate:
                r = await api.post("/devices", json={"token": f"6019{i:07d}1", "name": f"Shop {i:03d}"})
                assert r.status_code == 200, r.text

        await asyncio.gather(*(add(i) for i in range(total)))
        for i in (5, 105, 205):
            assert (await api.post(f"/sandbox/devices/6019{i:07d}1/scan")).status_code == 200

    page = await new_page(DESKTOP)
    await sign_in(page, gw)
    count = page.locator("#device-count")
    await expect(count).to_have_text(f"{total} devices")
    await expect(page.locator("#device-list > li")).to_have_count(total)

    search = page.get_by_label("Search devices")
    await search.fill("shop 01")
    await expect(count).to_have_text(f"10 of {total} devices")
    await expect(page.locator("#device-list > li:not([hidden])")).to_have_count(10)
    await search.fill("")

    await page.get_by_label("Filter by status").select_option("connected")
    await expect(count).to_have_text(f"3 of {total} devices")
    visible = page.locator("#device-list > li:not([hidden]) .device-name")
    await expect(visible).to_have_text(["Shop 005", "Shop 105", "Shop 205"])
    await search.fill("105")
    await expect(visible).to_have_text(["Shop 105"])
    await search.fill("Shop 006")
    await expect(page.locator("#devices-nomatch")).to_be_visible()
    await search.fill("Shop 1")
    await snap_variants(page, "devices-filtered")

    # A live status change redraws only that row and keeps the filter applied.
    async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=30) as api:
        assert (await api.post(f"/sandbox/devices/6019{150:07d}1/scan")).status_code == 200
    await expect(visible).to_have_text(["Shop 105", "Shop 150"])
    await expect(count).to_have_text(f"2 of {total} devices")


async def test_switching_devices_resets_every_per_device_panel(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """The send form's recipient and error, the CSV notice, the contacts search and the settings form
    never carry over from one device to the next."""
    first, second = "60123456801", "60123456802"
    await connected_device(api, first, "Reset A")
    await connected_device(api, second, "Reset B")
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await open_device(page, first)

    await page.get_by_label("To", exact=True).fill("12")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#send-result")).to_have_class(re.compile("alert-error"))
    async with page.expect_download():
        await page.get_by_role("button", name="Download contacts CSV").click()
    await expect(page.locator("#csv-result")).to_contain_text("Saved")

    await page.get_by_role("tab", name="Contacts").click()
    await page.get_by_label("Search contacts").fill("nobody")
    await page.get_by_role("tab", name="Settings").click()
    await expect(page.get_by_label("Device name")).to_have_value("Reset A")
    await page.get_by_label("Device name").fill("half-typed")
    await page.get_by_role("tab", name="Overview").click()

    await open_device(page, second)
    await expect(page.get_by_label("To", exact=True)).to_have_value("")
    await expect(page.locator("#send-result")).to_have_text("")
    await expect(page.locator("#send-result")).not_to_have_class(re.compile("alert"))
    await expect(page.locator("#csv-result")).to_have_text("")
    await page.get_by_role("tab", name="Settings").click()
    await expect(page.get_by_label("Device name")).to_have_value("Reset B")
    await page.get_by_role("tab", name="Contacts").click()
    await expect(page.get_by_label("Search contacts")).to_have_value("")
    assert page.url.endswith(f"#/devices/{second}/contacts")


async def test_device_settings_are_saved_and_cleared(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """Name, webhook URL and events go through PATCH /devices/{token}; empty URL and "All events" clear them."""
    token = "60123456803"
    await connected_device(api, token, "Settings")
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await open_device(page, token)
    await page.get_by_role("tab", name="Settings").click()
    await page.get_by_label("Device name").fill("Front desk")
    await page.get_by_label("Webhook URL (optional)").fill("https://crm.example.com/hooks/wa")
    await page.get_by_label("All events").uncheck()
    for box in await page.locator("#set-events input").all():
        await box.uncheck()
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#settings-error")).to_contain_text("at least one event")
    await page.get_by_role("checkbox", name=re.compile("^Message received")).check()
    await page.get_by_role("checkbox", name=re.compile("^Delivery and read receipts")).check()
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#settings-result")).to_have_text("Saved.")
    state = (await api.get(f"/devices/{token}")).json()["data"]
    assert state["name"] == "Front desk"
    assert state["webhookUrl"] == "https://crm.example.com/hooks/wa"
    assert state["webhookEvents"] == ["message.receipt", "message.received"]
    await expect(page.locator(f'#device-list [data-token="{token}"] .device-name')).to_have_text("Front desk")
    await expect(page.get_by_role("heading", name="Front desk")).to_be_visible()
    await snap_variants(page, "device-settings")

    await page.get_by_label("Webhook URL (optional)").fill("ftp://nope")
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#settings-error")).to_be_visible()
    await expect(page.get_by_label("Webhook URL (optional)")).to_have_attribute("aria-invalid", "true")

    await page.get_by_label("Webhook URL (optional)").fill("")
    await page.get_by_label("All events").check()
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.locator("#settings-result")).to_have_text("Saved.")
    state = (await api.get(f"/devices/{token}")).json()["data"]
    assert state["webhookUrl"] is None and state["webhookEvents"] is None


async def test_contacts_table_pages_searches_and_exports(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """60 contacts: 25 a page with a range, search by name or number, and the CSV export."""
    token = "60123456804"
    await connected_device(api, token, "Contacts")
    people = [{"phone": f"60172000{i:03d}", "name": f"Person {i:02d}"} for i in range(1, 61)]
    synced = await api.post(f"/sandbox/devices/{token}/history", json={"contacts": people})
    assert synced.status_code == 200, synced.text
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await open_device(page, token)
    await page.get_by_role("tab", name="Contacts").click()
    await expect(page.locator("#contacts-status")).to_have_text("60 contacts.")
    await expect(page.locator("#contacts-rows tr")).to_have_count(25)
    await expect(page.locator("#contacts-range")).to_have_text("1–25 of 60")
    await page.get_by_role("button", name="Next →").click()
    await expect(page.locator("#contacts-range")).to_have_text("26–50 of 60")
    await expect(page.locator("#contacts-rows tr").first).to_contain_text("Person 26")

    search = page.get_by_label("Search contacts")
    await search.fill("person 42")
    await expect(page.locator("#contacts-rows tr")).to_have_count(1)
    await expect(page.locator("#contacts-rows")).to_contain_text("+60172000042")
    await expect(page.locator("#contacts-status")).to_contain_text("1 match")
    await search.fill("6017200005")
    await expect(page.locator("#contacts-rows tr")).to_have_count(10)  # 050–059
    await search.fill("")
    await expect(page.locator("#contacts-range")).to_have_text("1–25 of 60")
    await snap_variants(page, "contacts")

    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Export CSV").click()
    lines = Path(await (await download_info.value).path()).read_text().splitlines()
    assert len(lines) == 61
    await expect(page.locator("#contacts-csv-result")).to_contain_text("60 contacts")


async def test_webhook_deliveries_log_filters_and_retries(
    spawn_gateway: Callable[..., GatewayProcess], new_page: Any
) -> None:
    """Failed deliveries show attempts and the last error; filters narrow; Retry and Retry all queue again."""
    gw = spawn_gateway(WEBHOOK_MAX_ATTEMPTS="1")
    token = "60123456805"
    async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=10) as api:
        created = await api.post(
            "/devices", json={"token": token, "name": "Hooks", "webhookUrl": "http://127.0.0.1:9/hook"}
        )
        assert created.status_code == 200, created.text
        assert (await api.post(f"/sandbox/devices/{token}/scan")).status_code == 200
        for i in range(2):
            r = await api.post(
                f"/sandbox/devices/{token}/incoming", json={"from": f"6017300002{i + 1}", "name": "Ali", "text": "hi"}
            )
            assert r.status_code == 200, r.text

        async def two_failed() -> bool:
            failed = (await api.get("/webhooks/deliveries", params={"status": "failed"})).json()["data"]["deliveries"]
            return sum(d["event"] == "message.received" for d in failed) >= 2

        await until(two_failed, 20, "two message.received deliveries failed")

    page = await new_page(DESKTOP)
    await sign_in(page, gw)
    await page.get_by_role("link", name="Webhook deliveries").click()
    await expect(page.get_by_role("heading", name="Webhook deliveries")).to_be_visible()
    assert page.url.endswith("#/webhooks")
    rows = page.locator("#deliveries-rows tr")
    await expect(rows.first).to_have_attribute("data-status", re.compile("failed|pending|delivered"))
    await page.get_by_label("Status", exact=True).select_option("failed")
    await page.get_by_label("Device", exact=True).select_option(token)
    await page.get_by_label("Event", exact=True).select_option("message.received")
    await expect(rows).to_have_count(2)
    await expect(page.locator('#deliveries-rows tr:not([data-status="failed"])')).to_have_count(0)
    first = rows.first
    await expect(first.locator("td").nth(4)).to_have_text("1")  # attempts
    await expect(first.locator("td").nth(5)).not_to_have_text("—")  # last error
    await expect(first).to_contain_text("Hooks")  # the device by name
    await snap_variants(page, "webhooks")

    delivery_id = await first.get_attribute("data-id")
    await first.get_by_role("button", name=f"Retry delivery {delivery_id}").click()
    await expect(page.locator(f'#deliveries-rows tr[data-id="{delivery_id}"]')).to_have_attribute(
        "data-status", "pending"
    )
    await expect(page.get_by_role("button", name="Retry 1 failed delivery")).to_be_visible()
    await page.get_by_role("button", name="Retry 1 failed delivery").click()
    await expect(page.locator(".toast").filter(has_text="Queued 1 delivery again")).to_be_visible()
    await expect(page.locator('#deliveries-rows tr[data-status="failed"]')).to_have_count(0)


async def test_receipts_read_as_people_read_them(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """A receipt in the live activity names the person and the message, never a JID or a message id."""
    token = "60123456806"
    ali = "60171222444"
    await connected_device(api, token, "Receipts")
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await open_device(page, token)
    incoming = await api.post(f"/sandbox/devices/{token}/incoming", json={"from": ali, "name": "Ali", "text": "Hi!"})
    assert incoming.status_code == 200, incoming.text
    feed = page.locator("#feed")
    await expect(feed).to_contain_text(f"Message from Ali (+{ali}): Hi!")
    await page.get_by_label("To", exact=True).fill(ali)
    await page.get_by_label("Message", exact=True).fill("Your order is ready")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(feed).to_contain_text(f"Delivered to Ali (+{ali}): “Your order is ready”")
    await expect(feed).to_contain_text(f"Read by Ali (+{ali}): “Your order is ready”")
    text = await feed.inner_text()
    assert "@s.whatsapp.net" not in text
    assert not re.search(r"3EB0[0-9A-F]{16}", text)
    await snap_variants(page, "overview-receipts")
