"""The pairing page (``GET /``) driven in headless chromium against the real server."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import expect

from .conftest import DESKTOP, PHONE, FrameListener, GatewayProcess, snap

pytestmark = pytest.mark.browser


async def sign_in(page: Any, gw: GatewayProcess, key: str | None = None) -> None:
    await page.goto(gw.base_url + "/")
    await page.get_by_role("textbox", name="API key", exact=True).fill(key or gw.api_key)
    await page.get_by_role("button", name="Continue").click()


async def add_device(page: Any, token: str, name: str, method: str = "qr") -> None:
    await page.get_by_role("button", name="+ Add device").click()
    await page.get_by_label("Phone number", exact=True).fill(token)
    await page.get_by_label("Name (optional)").fill(name)
    await page.get_by_role("radio", name="Pairing code" if method == "code" else "QR code").check()
    await page.get_by_role("button", name="Start pairing").click()


async def decode_qr(locator: Any) -> str | None:
    png = await locator.screenshot()
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    texts = [r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode]
    return texts[0] if texts else None


def is_for(event: str, token: str) -> Any:
    return lambda f: f.get("event") == event and f.get("token") == token


async def assert_no_horizontal_scroll(page: Any) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page scrolls sideways by {overflow}px"


async def test_wrong_key_is_rejected_with_a_clear_error(gateway: GatewayProcess, new_page: Any) -> None:
    """A key the gateway answers 401 to keeps the sign-in form up and says why."""
    page = await new_page(PHONE)
    await sign_in(page, gateway, key="definitely-not-the-key")
    error = page.get_by_role("alert").filter(has_text="rejected")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("401")
    await expect(page.locator("#app-view")).to_be_hidden()
    await expect(page.get_by_role("textbox", name="API key", exact=True)).to_have_attribute("aria-invalid", "true")
    assert await page.evaluate("sessionStorage.getItem('wa-gateway.apiKey')") is None
    await assert_no_horizontal_scroll(page)
    await snap(page, "phone-signin-wrong-key")


async def test_key_is_remembered_for_the_tab(gateway: GatewayProcess, new_page: Any) -> None:
    """After a good key, a reload goes straight to the devices (sessionStorage), and sign-out forgets it."""
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await expect(page.get_by_role("heading", name="Devices")).to_be_visible()
    await expect(page.locator("#live-badge")).to_have_text("Live")
    await page.reload()
    await expect(page.get_by_role("heading", name="Devices")).to_be_visible()
    await expect(page.locator("#auth-view")).to_be_hidden()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("textbox", name="API key", exact=True)).to_be_visible()
    assert await page.evaluate("sessionStorage.getItem('wa-gateway.apiKey')") is None


async def test_account_login_form_reports_bad_credentials(gateway: GatewayProcess, new_page: Any) -> None:
    """The account form posts to /auth/login and shows an error instead of entering the app."""
    page = await new_page(DESKTOP)
    await page.goto(gateway.base_url + "/")
    await page.get_by_role("tab", name="Account").click()
    await page.get_by_label("Username or email").fill("nobody")
    await page.get_by_label("Password").fill("wrong-password")
    async with page.expect_response(lambda r: r.url.endswith("/auth/login")) as resp_info:
        await page.get_by_role("button", name="Sign in").click()
    response = await resp_info.value
    assert response.request.method == "POST"
    assert response.status >= 400
    await expect(page.locator("#auth-error")).to_be_visible()
    await expect(page.locator("#app-view")).to_be_hidden()
    await snap(page, "desktop-signin-account")


async def test_qr_pairing_scan_send_and_contacts_csv(
    gateway: GatewayProcess, frames: FrameListener, new_page: Any, api: httpx.AsyncClient
) -> None:
    """Add a device, read the live QR off the screen, simulate the scan, send, and export contacts."""
    token = "60123456701"
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await expect(page.locator("#live-badge")).to_have_text("Live")
    await expect(page.locator("#mode-badge")).to_be_visible()  # sandbox
    await add_device(page, token, "Front desk")

    await expect(page.get_by_role("heading", name="Front desk")).to_be_visible()
    await expect(page.locator("#d-status")).to_have_text("Waiting for scan")
    qr_box = page.locator("#qr-box")
    await expect(qr_box.locator("svg")).to_be_visible()
    await frames.wait_for(is_for("qrcode", token))

    # The QR on screen is the latest one the gateway published (allowing for a rotation mid-check).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        decoded = await decode_qr(qr_box)
        latest = frames.latest(is_for("qrcode", token))
        assert latest is not None
        if decoded is not None and decoded == latest["data"]:
            break
        assert loop.time() < deadline, f"screen shows {decoded!r}, latest frame is {latest['data']!r}"
    assert decoded.startswith("2@")
    rest = (await api.get(f"/devices/{token}/qr")).json()["data"]
    assert rest["hasQR"] is True

    await expect(page.locator("#qr-countdown-text")).to_have_text(
        re.compile(r"^(Expires in \d+ s|Refreshing…|Refreshes automatically)$")
    )
    await expect(page.get_by_role("button", name="Simulate scan")).to_be_visible()
    await snap(page, "desktop-pairing-qr")

    await page.get_by_role("button", name="Simulate scan").click()
    success = await frames.wait_for(is_for("connection-success", token))
    await expect(page.locator("#d-status")).to_have_text("Connected")
    await expect(page.locator(f'#device-list [data-token="{token}"] .badge')).to_have_text("Connected")
    pushname = (success.get("data") or {}).get("pushname")
    if pushname:
        await expect(page.locator("#connected-name")).to_have_text(f"Connected as {pushname}")
    await expect(page.locator("#pair-section")).to_be_hidden()

    await page.get_by_label("To", exact=True).fill("60198765432")
    await page.get_by_label("Message", exact=True).fill("Hello from the browser test")
    await page.get_by_role("button", name="Send", exact=True).click()
    result = page.locator("#send-result")
    await expect(result).to_contain_text("Accepted")
    message_id = await result.get_attribute("data-message-id")
    assert message_id and re.fullmatch(r"3EB0[0-9A-F]{16}", message_id)
    sent = (await api.get(f"/sandbox/devices/{token}/sent")).json()["data"]["messages"]
    assert any(m["id"] == message_id and m["text"] == "Hello from the browser test" for m in sent)

    incoming = await api.post(
        f"/sandbox/devices/{token}/incoming", json={"from": "60171222333", "name": "Alice", "text": "Hi there!"}
    )
    assert incoming.status_code == 200, incoming.text
    await expect(page.locator("#feed")).to_contain_text("Hi there!")
    await expect(page.locator("#feed")).to_contain_text("Alice")

    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download contacts CSV").click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".csv")
    csv_text = Path(await download.path()).read_text()
    lines = csv_text.splitlines()
    assert lines[0] == "phone,name,source,first_seen,last_seen"
    assert any(line.startswith("60171222333,Alice,message,") for line in lines[1:])
    await expect(page.locator("#csv-result")).to_contain_text("Saved")
    await snap(page, "desktop-connected")


async def test_pairing_code_on_a_phone_screen(gateway: GatewayProcess, frames: FrameListener, new_page: Any) -> None:
    """At 375 px: the pairing code shows large, matches the frame, and the device turns connected."""
    token = "60123456702"
    page = await new_page(PHONE)
    await sign_in(page, gateway)
    await add_device(page, token, "Phone line", method="code")
    frame = await frames.wait_for(is_for("pairing-code", token))
    code = frame["data"]["code"]
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    code_box = page.locator("#pair-code")
    await expect(code_box).to_have_text(code)
    size = await code_box.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 30
    box = await code_box.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    await assert_no_horizontal_scroll(page)
    await snap(page, "phone-pairing-code")

    await page.get_by_role("button", name="Simulate scan").click()
    await expect(page.locator("#d-status")).to_have_text("Connected")
    await assert_no_horizontal_scroll(page)
    await snap(page, "phone-connected")


async def test_qr_is_readable_on_a_phone_screen(gateway: GatewayProcess, frames: FrameListener, new_page: Any) -> None:
    """At 375 px the QR still fits the screen and decodes to the latest frame."""
    token = "60123456703"
    page = await new_page(PHONE)
    await sign_in(page, gateway)
    await add_device(page, token, "Counter")
    qr_box = page.locator("#qr-box")
    await expect(qr_box.locator("svg")).to_be_visible()
    await frames.wait_for(is_for("qrcode", token))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        decoded = await decode_qr(qr_box)
        latest = frames.latest(is_for("qrcode", token))
        if latest is not None and decoded == latest["data"]:
            break
        assert loop.time() < deadline, f"screen shows {decoded!r}"
    box = await qr_box.bounding_box()
    assert box and box["width"] >= 240 and box["x"] + box["width"] <= PHONE["width"]
    await assert_no_horizontal_scroll(page)
    await snap(page, "phone-pairing-qr")


async def test_socket_drop_is_reported_and_recovers(own_gateway: GatewayProcess, new_page: Any) -> None:
    """When the gateway goes away the page says so, retries with backoff, and comes back live."""
    page = await new_page(DESKTOP)
    await sign_in(page, own_gateway)
    live = page.locator("#live-badge")
    await expect(live).to_have_text("Live")

    await asyncio.to_thread(own_gateway.stop)
    alert = page.locator("#socket-alert")
    await expect(alert).to_be_visible()
    await expect(alert).to_contain_text(re.compile(r"Reconnecting in \d+ s"))
    await expect(live).to_have_text("Offline")
    await snap(page, "desktop-socket-dropped")

    await asyncio.to_thread(own_gateway.start)
    await expect(live).to_have_text("Live", timeout=45_000)
    await expect(alert).to_be_hidden()


async def test_qr_redraws_on_every_rotation(spawn_gateway: Callable[..., GatewayProcess], new_page: Any) -> None:
    """With a fast rotation the page swaps in each new QR and times its countdown by the observed interval."""
    gw = spawn_gateway(SANDBOX_QR_INTERVAL_MS="1500")
    token = "60123456704"
    page = await new_page(DESKTOP)
    async with FrameListener(gw.ws_url) as frames:
        await sign_in(page, gw)
        await add_device(page, token, "Rotating")
        first = await frames.wait_for(is_for("qrcode", token))
        await frames.wait_for(lambda f: is_for("qrcode", token)(f) and f["data"] != first["data"])
        qr_box = page.locator("#qr-box")
        seen: set[str] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(seen) < 2:
            decoded = await decode_qr(qr_box)
            if decoded and decoded != first["data"]:
                assert any(f.get("data") == decoded for f in frames.frames if is_for("qrcode", token)(f))
                seen.add(decoded)
            assert loop.time() < deadline, f"the QR on screen changed to only {len(seen)} newer code(s)"
    # Countdown follows the observed ~1.5 s interval, not the 20 s default.
    await expect(page.locator("#qr-countdown-text")).to_have_text(re.compile(r"^(Expires in [12] s|Refreshing…)$"))


async def test_account_login_sees_own_devices_without_sandbox_controls(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """An account signs in with the form (gw_session cookie), pairs its own device, and gets no admin-only scan."""
    created = await api.post(
        "/auth/signup", json={"username": "alice", "email": "alice@example.com", "password": "correct horse battery"}
    )
    assert created.status_code == 200, created.text
    token = "60123456705"
    page = await new_page(DESKTOP)
    await page.goto(gateway.base_url + "/")
    await page.get_by_role("tab", name="Account").click()
    await page.get_by_label("Username or email").fill("alice@example.com")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Devices")).to_be_visible()
    await expect(page.locator("#whoami")).to_have_text("Signed in as alice")
    cookies = await page.context.cookies()
    assert any(c["name"] == "gw_session" and c["httpOnly"] for c in cookies)
    assert await page.evaluate("sessionStorage.getItem('wa-gateway.apiKey')") is None
    await expect(page.locator("#live-badge")).to_have_text("Live")  # the socket authenticated by cookie

    await add_device(page, token, "Alice's line")
    await expect(page.locator("#qr-box svg")).to_be_visible()
    await expect(page.get_by_role("button", name="Simulate scan")).to_be_hidden()
    devices = (await api.get("/devices")).json()["data"]["devices"]
    assert any(d["token"] == token for d in devices)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("tab", name="API key")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in to your gateway")).to_be_visible()


async def test_a_device_that_never_linked_is_shown_as_such(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """A device whose pairing was cancelled is "Never linked" with a "Pair" button, not "session kept —
    reconnect"; pairing it again shows a QR."""
    token = "60123456707"
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await add_device(page, token, "Never scanned")
    await expect(page.locator("#d-status")).to_have_text("Waiting for scan")
    await page.get_by_role("button", name="Cancel pairing").click()

    await expect(page.locator("#d-status")).to_have_text("Never linked")
    await expect(page.locator("#offline-text")).to_contain_text("never linked to a phone")
    await expect(page.locator("#offline-text")).not_to_contain_text("session is kept")
    await expect(page.locator(f'#device-list [data-token="{token}"] .badge')).to_have_text("Never linked")
    state = (await api.get(f"/devices/{token}")).json()["data"]
    assert (state["status"], state["authenticated"]) == ("disconnected", False)
    await page.locator("#device-filter").select_option("never_linked")
    await expect(page.locator(f'#device-list [data-token="{token}"]')).to_be_visible()
    await snap(page, "desktop-never-linked")

    await page.locator("#device-filter").select_option("")
    await page.get_by_role("button", name="Pair", exact=True).click()
    await expect(page.locator("#d-status")).to_have_text("Waiting for scan")
    await expect(page.locator("#qr-box svg")).to_be_visible()
