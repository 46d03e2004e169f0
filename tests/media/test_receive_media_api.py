"""Incoming media end to end on the sandbox: downloaded before the event, stored, reported with a
signed URL a CRM fetches without a key; a failed download still delivers the event."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from gateway.api.models.events import EVENTS
from gateway.drivers.base import MediaRef
from tests.media import samples
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.webhook_receiver import Receiver


async def received(receiver: Receiver, event: str = "message.received") -> dict[str, Any]:
    """The event's data, after checking the whole body against its documented model (OpenAPI webhooks)."""
    hits = await receiver.wait(lambda hits: any(h.json()["event"] == event for h in hits))
    body = next(h.json() for h in hits if h.json()["event"] == event)
    msgspec.convert(body, EVENTS[event])
    data: dict[str, Any] = body["data"]
    return data


async def test_incoming_media_has_a_signed_url_fetchable_without_a_key(
    gateway_factory: Callable[..., Any], receiver: Receiver
) -> None:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url, public_url="https://wa.example.com")
    await gw.pair()
    jpeg = samples.jpeg()
    body = {
        "from": OTHER,
        "media": {"data": base64.b64encode(jpeg).decode(), "mimetype": "image/jpeg", "caption": "my photo"},
    }
    assert (await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)).status_code == 200
    data = await received(receiver)
    media = data["media"]
    assert data["type"] == "image" and data["text"] == "my photo"
    assert media["status"] == "stored" and media["type"] == "image" and media["mimetype"] == "image/jpeg"
    assert media["size"] == len(jpeg) and media["sha256"] == hashlib.sha256(jpeg).hexdigest()
    assert media["url"].startswith(f"https://wa.example.com/media/{media['id']}?exp=")
    r = await gw.anon.get(media["url"].removeprefix("https://wa.example.com"))
    assert r.status_code == 200 and r.content == jpeg and r.headers["content-type"] == "image/jpeg"
    tampered = media["url"].removeprefix("https://wa.example.com").replace("exp=", "exp=9")
    assert (await gw.anon.get(tampered)).status_code == 403


async def test_a_voice_note_and_a_document_keep_their_flags(
    gateway_factory: Callable[..., Any], receiver: Receiver
) -> None:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url)
    await gw.pair()
    ogg = samples.wav()
    body = {
        "from": OTHER,
        "media": {"data": base64.b64encode(ogg).decode(), "voiceNote": True, "mimetype": "audio/ogg"},
    }
    await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)
    media = (await received(receiver))["media"]
    assert media["voiceNote"] is True and media["status"] == "stored"


async def test_a_failed_download_still_delivers_the_event(
    gateway_factory: Callable[..., Any], receiver: Receiver
) -> None:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url)
    await gw.pair()
    driver = gw.rt.devices.get(TOKEN).driver

    async def broken(ref: MediaRef) -> bytes:
        raise ConnectionError("the CDN is down")

    driver.download = broken
    body = {"from": OTHER, "media": {"data": base64.b64encode(samples.PDF).decode(), "filename": "a.pdf"}}
    await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)
    media = (await received(receiver))["media"]
    assert media["status"] == "failed" and media["url"] is None and media["id"] is None
    assert media["filename"] == "a.pdf" and media["type"] == "document"


async def test_without_auto_download_nothing_is_fetched(
    gateway_factory: Callable[..., Any], receiver: Receiver
) -> None:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url, media_auto_download=False)
    await gw.pair()
    body = {"from": OTHER, "media": {"data": base64.b64encode(samples.png()).decode()}}
    await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)
    media = (await received(receiver))["media"]
    assert media["status"] == "failed" and media["url"] is None
    assert await gw.rt.store.media_total_bytes() == 0


async def test_media_typed_on_the_phone_is_downloaded_too(
    gateway_factory: Callable[..., Any], receiver: Receiver
) -> None:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url)
    await gw.pair()
    body = {"from": OTHER, "fromMe": True, "media": {"data": base64.b64encode(samples.png()).decode()}}
    await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)
    media = (await received(receiver, "message.sent"))["media"]
    assert media["status"] == "stored" and media["url"]


async def test_the_simulated_phone_sends_media_by_url_typed_from_its_bytes(
    gateway_factory: Callable[..., Any], receiver: Receiver
) -> None:
    import asyncio

    gw: Gateway = await gateway_factory(webhook_url=receiver.url, media_fetch_allow_private=True)
    await gw.pair()
    png = samples.png()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n" + png)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/cat.png"
    try:
        r = await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json={"from": OTHER, "media": {"url": url}})
    finally:
        server.close()
    assert r.status_code == 200, r.text
    media = (await received(receiver))["media"]
    assert media["type"] == "image" and media["mimetype"] == "image/png"
    assert media["sha256"] == hashlib.sha256(png).hexdigest()
    bad = {"from": OTHER, "media": {"url": "http://127.0.0.1:1/x.png"}}
    assert (await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=bad)).json()["error"][
        "code"
    ] == "MEDIA_FETCH_FAILED"
    both = {"from": OTHER, "media": {"url": url, "data": "AAAA"}}
    assert (await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=both)).json()["error"][
        "code"
    ] == "INVALID_MEDIA"


async def test_a_failed_download_can_be_retried(gateway_factory: Callable[..., Any], receiver: Receiver) -> None:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url)
    await gw.pair()
    driver = gw.rt.devices.get(TOKEN).driver
    real = driver.download

    async def broken(ref: MediaRef) -> bytes:
        raise ConnectionError("the CDN is down")

    driver.download = broken
    jpeg = samples.jpeg()
    body = {"from": OTHER, "media": {"data": base64.b64encode(jpeg).decode(), "mimetype": "image/jpeg"}}
    await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)
    data = await received(receiver)
    assert data["media"]["status"] == "failed"
    url = f"/devices/{TOKEN}/messages/{data['id']}/media"
    r = await gw.http.post(url)
    assert r.status_code == 400 and r.json()["error"]["code"] == "MEDIA_FETCH_FAILED"  # still down
    driver.download = real
    r = await gw.http.post(url)
    assert r.status_code == 200, r.text
    media = r.json()["data"]
    assert media["status"] == "stored" and media["sha256"] == hashlib.sha256(jpeg).hexdigest() and media["url"]
    assert (await gw.anon.get(media["url"].removeprefix(gw.settings.base_url))).content == jpeg
    r = await gw.http.post(url)  # nothing waits any more
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = await gw.http.post(f"/devices/{OTHER}/messages/{data['id']}/media")
    assert r.status_code == 404 and r.json()["error"]["code"] == "DEVICE_NOT_FOUND"


async def test_the_simulated_phone_can_send_media_over_1_mib(
    gateway_factory: Callable[..., Any], receiver: Receiver
) -> None:
    gw: Gateway = await gateway_factory(webhook_url=receiver.url)
    await gw.pair()
    big = samples.noisy_jpeg(1_200_000)
    body = {"from": OTHER, "media": {"data": base64.b64encode(big).decode(), "mimetype": "image/jpeg"}}
    r = await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)
    assert r.status_code == 200, r.text
    assert (await received(receiver))["media"]["size"] == len(big)
