"""Media on the console at ``/`` (issue 14's pages): the send box attaches a file and sends it as
multipart ``POST /messages`` (the sandbox's ``/sent`` log gets the same bytes), and incoming media shows
in the live activity — thumbnails, players, download links, and a retry for a failed download.

Every page here is watched by ``page_errors``: an image or a player blocked by the pages' CSP fails the
test, so these tests also check that the signed ``/media`` links load under it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.media import samples

from .conftest import DESKTOP, PHONE, GatewayProcess, snap
from .test_operator_console import connected_device, open_device, snap_variants
from .test_pairing_page import assert_no_horizontal_scroll, sign_in

pytestmark = pytest.mark.browser

ALI = "60171222555"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def last_sent(api: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await api.get(f"/sandbox/devices/{token}/sent")
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["data"]["messages"]
    assert messages, "the simulated WhatsApp received nothing"
    return messages[-1]


async def attach(page: Any, name: str, mime: str, data: bytes) -> None:
    await page.get_by_label("Attach a file (optional)").set_input_files(
        {"name": name, "mimeType": mime, "buffer": data}
    )


async def send_and_wait(page: Any, expected: str) -> str:
    """Press Send; wait for the accepted line; return the message id it names."""
    await page.get_by_role("button", name="Send", exact=True).click()
    result = page.locator("#send-result")
    # An upload, a type check and a thumbnail: on a loaded host that can take longer than expect's 5 s.
    await expect(result).to_have_class("result alert alert-ok", timeout=20_000)
    await expect(result).to_contain_text(expected)
    message_id: str = await result.get_attribute("data-message-id")
    assert message_id
    return message_id


async def test_the_send_box_attaches_a_png_and_a_pdf_and_whatsapp_gets_the_same_bytes(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Attach → Send: the simulated WhatsApp received exactly the file (sha256), typed from its MIME
    type, with the caption; overrides send a voice note or refuse a PDF as a sticker, saying why."""
    token = "60123456811"
    await connected_device(api, token, "Media send")
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await open_device(page, token)
    await page.get_by_label("To", exact=True).fill(ALI)

    png = samples.png((96, 64), (20, 140, 90))
    await attach(page, "cat.png", "image/png", png)
    await expect(page.locator("#send-attachment")).to_be_visible()
    await expect(page.locator("#send-file-name")).to_have_text("cat.png")
    await expect(page.get_by_label("Send as")).to_contain_text("Automatic (image)")
    await expect(page.get_by_role("img", name="Preview of cat.png")).to_be_visible()
    caption = page.get_by_label("Caption (optional)")
    await caption.fill("Your new cat")
    await snap(page, "desktop-send-attachment")
    message_id = await send_and_wait(page, "image cat.png")
    sent = await last_sent(api, token)
    assert sent["id"] == message_id and sent["to"].startswith(ALI)
    assert sent["type"] == "image" and sent["text"] == "Your new cat"
    assert sent["media"]["sha256"] == sha(png) and sent["media"]["mimetype"] == "image/png"
    # Sent: the file is gone from the form, the box is a message box again, the feed says what went.
    await expect(page.locator("#send-attachment")).to_be_hidden()
    await expect(page.get_by_label("Message", exact=True)).to_be_visible()
    await expect(page.locator("#feed")).to_contain_text(f"Sent to +{ALI}: image cat.png")

    await attach(page, "invoice 42.pdf", "application/pdf", samples.PDF)
    await expect(page.get_by_label("Send as")).to_contain_text("Automatic (document)")
    await page.get_by_label("Caption (optional)").fill("")
    message_id = await send_and_wait(page, "document invoice 42.pdf")
    sent = await last_sent(api, token)
    assert sent["id"] == message_id and sent["type"] == "document"
    assert sent["media"]["sha256"] == sha(samples.PDF)
    assert sent["media"]["filename"] == "invoice 42.pdf" and sent["media"]["mimetype"] == "application/pdf"
    assert not sent.get("text")

    # A PDF cannot be a sticker: the envelope's message is shown, nothing is sent, the file stays.
    await attach(page, "invoice 42.pdf", "application/pdf", samples.PDF)
    await page.get_by_label("Send as").select_option("sticker")
    await page.get_by_role("button", name="Send", exact=True).click()
    result = page.locator("#send-result")
    await expect(result).to_have_class("result alert alert-error")
    await expect(result).to_contain_text("a sticker must be an image")
    assert (await last_sent(api, token))["id"] == message_id
    await expect(page.locator("#send-file-name")).to_have_text("invoice 42.pdf")

    # "Voice note" sends audio as a voice note (the gateway converts the WAV to OGG/Opus).
    await attach(page, "hello.wav", "audio/wav", samples.wav(0.4))
    await page.get_by_label("Send as").select_option("voice")
    await send_and_wait(page, "voice note hello.wav")
    sent = await last_sent(api, token)
    assert sent["type"] == "audio" and sent["media"]["voiceNote"] is True
    assert sent["media"]["mimetype"].startswith("audio/ogg")

    # "Remove file" brings the text box back; a text send still works.
    await attach(page, "cat.png", "image/png", png)
    await page.get_by_role("button", name="Remove file").click()
    await expect(page.locator("#send-attachment")).to_be_hidden()
    await page.get_by_label("Message", exact=True).fill("plain text")
    await send_and_wait(page, "Accepted")
    sent = await last_sent(api, token)
    assert sent["type"] == "text" and sent["text"] == "plain text"


async def test_attached_file_is_forgotten_when_another_device_is_selected(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    first, second = "60123456812", "60123456813"
    await connected_device(api, first, "Media A")
    await connected_device(api, second, "Media B")
    page = await new_page(PHONE)
    await sign_in(page, gateway)
    await open_device(page, first)
    await attach(page, "cat.png", "image/png", samples.png())
    await expect(page.locator("#send-attachment")).to_be_visible()
    await assert_no_horizontal_scroll(page)
    await snap(page, "phone-send-attachment")
    await page.set_viewport_size(DESKTOP)
    await open_device(page, second)
    await expect(page.locator("#send-attachment")).to_be_hidden()
    assert await page.locator("#send-file").evaluate("input => input.files.length") == 0


async def incoming(api: httpx.AsyncClient, token: str, media: dict[str, Any], **extra: Any) -> str:
    r = await api.post(f"/sandbox/devices/{token}/incoming", json={"from": ALI, "name": "Ali", "media": media, **extra})
    assert r.status_code == 200, r.text
    message_id: str = r.json()["data"]["id"]
    return message_id


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_incoming_media_shows_in_the_live_activity(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """An image as a thumbnail that loaded, a document as a download link with its name and size (the
    link is the signed URL: it serves the same bytes without a key), a voice note as a player, a video
    as a player with a link."""
    token = "60123456814"
    await connected_device(api, token, "Media inbox")
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await open_device(page, token)
    feed = page.locator("#feed")

    png = samples.png((120, 80), (230, 120, 20))
    await incoming(api, token, {"data": b64(png), "caption": "The damaged box"})
    image = feed.locator('.media[data-media-type="image"] img')
    await expect(image).to_be_visible()
    await expect(image).to_have_attribute("alt", "Image")
    await expect(feed).to_contain_text("Message from Ali (+60171222555): The damaged box")
    await page.wait_for_function(
        "() => { const i = document.querySelector('#feed .media-image img'); return i && i.complete && i.naturalWidth === 120; }"
    )
    src = await image.get_attribute("src")
    assert src and src.startswith("/media/") and "sig=" in src  # same-origin path: the CSP allows it

    await incoming(api, token, {"data": b64(samples.PDF), "filename": "contract.pdf"})
    link = feed.get_by_role("link", name="contract.pdf")
    await expect(link).to_be_visible()
    await expect(link).to_contain_text(f"application/pdf · {len(samples.PDF)} B")
    await expect(link).to_have_attribute("download", "contract.pdf")
    await expect(feed).to_contain_text("Message from Ali (+60171222555): Document contract.pdf")
    href = await link.get_attribute("href")
    async with httpx.AsyncClient(base_url=gateway.base_url) as anonymous:
        fetched = await anonymous.get(href)
    assert fetched.status_code == 200 and fetched.content == samples.PDF

    wav = samples.wav(0.5)
    await incoming(api, token, {"data": b64(wav), "mimetype": "audio/wav", "voiceNote": True})
    player = feed.locator("audio[aria-label='Voice note']")
    await expect(player).to_have_count(1)
    await page.wait_for_function(
        "() => { const a = document.querySelector('#feed audio'); return a && a.duration > 0.4; }"
    )

    await incoming(api, token, {"data": b64(samples.mp4(tmp_path)), "mimetype": "video/mp4"})
    await expect(feed.locator('.media[data-media-type="video"] video')).to_have_count(1)
    await expect(feed.get_by_role("link", name="Open video")).to_be_visible()

    await snap(page, "desktop-incoming-media")
    await snap_variants(page, "overview-incoming-media")


async def test_media_typed_on_the_phone_shows_in_the_live_activity(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient
) -> None:
    """A photo sent from the linked phone itself (a ``message.sent`` frame, fromMe) is an entry of its
    own with the picture, addressed to the chat partner — not lost because it is not a received message."""
    token = "60123456815"
    await connected_device(api, token, "Phone-typed media")
    page = await new_page(DESKTOP)
    await sign_in(page, gateway)
    await open_device(page, token)
    feed = page.locator("#feed")
    png = samples.png((64, 48), (20, 120, 230))
    await incoming(api, token, {"data": b64(png), "caption": "Sent from my phone"}, fromMe=True)
    await expect(feed).to_contain_text("Sent from the phone to +60171222555: “Sent from my phone”")
    await page.wait_for_function(
        "() => { const i = document.querySelector('#feed .media-image img'); return i && i.complete && i.naturalWidth === 64; }"
    )


async def test_a_failed_download_shows_a_retry_that_fetches_it(
    spawn_gateway: Callable[..., GatewayProcess], new_page: Any
) -> None:
    """With MEDIA_AUTO_DOWNLOAD=false incoming media arrives undownloaded (status failed): the entry
    says so, and "Retry download" fetches it through the re-download route and shows the thumbnail."""
    gw = spawn_gateway(MEDIA_AUTO_DOWNLOAD="false")
    token = "60123456815"
    async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=10) as api:
        await connected_device(api, token, "Media retry")
        page = await new_page(DESKTOP)
        await sign_in(page, gw)
        await open_device(page, token)
        png = samples.png((64, 64), (40, 40, 200))
        await incoming(api, token, {"data": b64(png), "filename": "photo.png"})
    entry = page.locator('#feed .media[data-media-status="failed"]')
    await expect(entry).to_contain_text("Image photo.png not downloaded")
    await snap(page, "desktop-incoming-media-failed")
    await entry.get_by_role("button", name="Retry download").click()
    stored = page.locator('#feed .media[data-media-status="stored"] img')
    await expect(stored).to_be_visible()
    await page.wait_for_function(
        "() => { const i = document.querySelector('#feed .media-image img'); return i && i.complete && i.naturalWidth === 64; }"
    )
    await expect(page.get_by_role("button", name="Retry download")).to_have_count(0)
