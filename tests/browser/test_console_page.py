"""The WebSocket console (``GET /console``) driven in headless chromium."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from .conftest import DESKTOP, PHONE, GatewayProcess, snap

pytestmark = pytest.mark.browser


async def connect_console(page: Any, gw: GatewayProcess) -> None:
    await page.goto(gw.base_url + "/console")
    await page.get_by_label("API key", exact=True).fill(gw.api_key)
    await page.get_by_role("button", name="Connect", exact=True).click()
    await expect(page.locator("#ws-badge")).to_have_text("Connected")
    await expect(page.locator('#log li[data-event="connected"]')).to_have_count(1)


def received(page: Any, event: str) -> Any:
    return page.locator(f'#log li[data-dir="in"][data-event="{event}"]')


async def test_every_quick_action_gets_its_answer(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """ping, whoami, list_devices, get_state, get_qr and subscribe each log the server's reply frame."""
    token = "60123456711"
    created = await api.post("/devices", json={"token": token, "name": "Console"})
    assert created.status_code == 200, created.text
    page = await new_page(DESKTOP)
    await connect_console(page, gateway)
    await page.get_by_label("Device token").fill(token)

    for action, reply in [
        ("ping", "pong"),
        ("whoami", "whoami"),
        ("list_devices", "devices"),
        ("get_state", "session_state"),
        ("get_qr", "qrcode"),
        ("subscribe", "subscribed"),
    ]:
        await page.get_by_role("button", name=action, exact=True).click()
        await expect(page.locator(f'#log li[data-dir="out"][data-event="{action}"]')).to_have_count(1)
        await expect(received(page, reply)).not_to_have_count(0)
    await snap(page, "desktop-console")


async def test_custom_frames_and_malformed_input(gateway: GatewayProcess, new_page: Any) -> None:
    """A custom JSON frame is sent as typed; raw non-JSON gets the server's error frame; bad JSON is caught locally."""
    page = await new_page(DESKTOP)
    await connect_console(page, gateway)
    editor = page.get_by_label("JSON to send")

    await editor.fill('{"action": "ping"}')
    await page.get_by_role("button", name="Send frame").click()
    await expect(received(page, "pong")).to_have_count(1)

    await editor.fill("{not json")
    await page.get_by_role("button", name="Send frame").click()
    await expect(page.locator("#custom-error")).to_contain_text("Not valid JSON")

    await page.get_by_label("Send as raw text").check()
    await page.get_by_role("button", name="Send frame").click()
    await expect(received(page, "error")).to_have_count(1)
    await page.get_by_label("Send as raw text").uncheck()

    await editor.fill('{"action": "no_such_action"}')
    await page.get_by_role("button", name="Send frame").click()
    await expect(received(page, "error")).to_have_count(2)
    await expect(page.locator("#ws-badge")).to_have_text("Connected")  # the connection stays open


async def test_log_filters_and_disconnect(gateway: GatewayProcess, new_page: Any) -> None:
    """Filtering by event and by text narrows the log; Disconnect closes the socket."""
    page = await new_page(PHONE)
    await connect_console(page, gateway)
    for _ in range(2):
        await page.get_by_role("button", name="ping", exact=True).click()
    await page.get_by_role("button", name="whoami", exact=True).click()
    await expect(received(page, "whoami")).to_have_count(1)
    await expect(received(page, "pong")).to_have_count(2)

    await page.get_by_label("Event", exact=True).select_option("pong")
    await expect(page.locator("#log li")).to_have_count(2)
    await expect(page.locator('#log li:not([data-event="pong"])')).to_have_count(0)
    await page.get_by_label("Event", exact=True).select_option("")

    await page.get_by_label("Direction").select_option("out")
    await expect(page.locator('#log li:not([data-dir="out"])')).to_have_count(0)
    await page.get_by_label("Direction").select_option("")

    await page.get_by_label("Filter").fill("clientId")
    await expect(page.locator("#log li")).not_to_have_count(0)
    await expect(page.locator('#log li:not([data-event="connected"]):not([data-event="whoami"])')).to_have_count(0)
    await page.get_by_label("Filter").fill("")

    await page.get_by_role("button", name="Disconnect").click()
    await expect(page.locator("#ws-badge")).to_have_text("Disconnected")
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    await snap(page, "phone-console")
