"""POST /messages with media, end to end through the sandbox: every source, the §11 codes in order,
the sha256 WhatsApp "received", conversion, multipart, idempotency."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from typing import Any

import httpx

from tests.media import samples
from tests.support.accounts import Tenants
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway

PEER = "60171222333"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def sent(gw: Gateway) -> list[dict[str, Any]]:
    r = await gw.http.get(f"/sandbox/devices/{TOKEN}/sent")
    messages: list[dict[str, Any]] = r.json()["data"]["messages"]
    return messages


def err(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def send(gw: Gateway, media: dict[str, Any], **extra: Any) -> httpx.Response:
    return await gw.http.post("/messages", json={"token": TOKEN, "to": PEER, "media": media, **extra})


async def test_by_data_the_sandbox_receives_the_same_bytes(gw: Gateway) -> None:
    await gw.pair()
    pdf = samples.PDF
    r = await send(gw, {"data": b64(pdf), "filename": "invoice.pdf", "caption": "Invoice 0042"})
    assert r.status_code == 200, r.text
    assert set(r.json()["data"]) == {"messageId", "timestamp"}
    (m,) = await sent(gw)
    assert m["id"] == r.json()["data"]["messageId"] and m["to"] == f"{PEER}@s.whatsapp.net"
    assert m["type"] == "document" and m["text"] == "Invoice 0042"
    assert m["media"] == {
        "type": "document",
        "mimetype": "application/pdf",
        "size": len(pdf),
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "filename": "invoice.pdf",
    }


async def test_by_upload_id_many_times(gw: Gateway) -> None:
    await gw.pair()
    png = samples.png()
    up = (await gw.http.post("/media", files={"file": ("p.png", png, "image/png")})).json()["data"]
    for _ in range(3):
        r = await send(gw, {"id": up["id"], "caption": "look"})
        assert r.status_code == 200, r.text
    got = await sent(gw)
    assert len(got) == 3 and all(m["type"] == "image" and m["media"]["sha256"] == up["sha256"] for m in got)


async def test_voice_note_and_video_are_converted(gw: Gateway, tmp_path: Any) -> None:
    await gw.pair()
    r = await send(gw, {"data": b64(samples.wav()), "voiceNote": True})
    assert r.status_code == 200, r.text
    r = await send(gw, {"data": b64(samples.webm(tmp_path))})
    assert r.status_code == 200, r.text
    voice, video = await sent(gw)
    assert voice["media"]["mimetype"] == "audio/ogg; codecs=opus" and voice["media"]["voiceNote"] is True
    assert video["type"] == "video" and video["media"]["mimetype"] == "video/mp4"


async def test_by_url(gateway_factory: Callable[..., Any]) -> None:
    gw: Gateway = await gateway_factory(media_fetch_allow_private=True)
    await gw.pair()
    jpeg = samples.jpeg()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        r = await send(gw, {"url": f"http://127.0.0.1:{port}/shop/photo.jpg?v=2", "caption": "Your order"})
    finally:
        server.close()
    assert r.status_code == 200, r.text
    (m,) = await sent(gw)
    assert m["type"] == "image" and m["media"]["sha256"] == hashlib.sha256(jpeg).hexdigest()


async def test_multipart_with_a_file_part(gw: Gateway) -> None:
    await gw.pair()
    pdf = samples.PDF
    r = await gw.http.post(
        "/messages",
        data={"token": TOKEN, "to": PEER, "caption": "Signed contract", "filename": "contract.pdf"},
        files={"file": ("upload.bin", pdf, "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    (m,) = await sent(gw)
    assert m["media"]["filename"] == "contract.pdf" and m["media"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert m["text"] == "Signed contract"


async def test_multipart_errors_in_order(gw: Gateway) -> None:
    await gw.pair()
    post = gw.http.post
    r = await post("/messages", data={"to": PEER}, files={"file": ("a.pdf", samples.PDF)})
    assert err(r) == (400, "MISSING_TOKEN")
    r = await post("/messages", data={"token": TOKEN, "to": "12"}, files={"file": ("a.pdf", samples.PDF)})
    assert err(r) == (400, "INVALID_PHONE")
    r = await post("/messages", data={"token": TOKEN, "to": PEER, "caption": "no file"}, files={"x": ("x", b"1")})
    assert err(r) == (400, "INVALID_MEDIA") and "no 'file' part" in r.json()["error"]["message"]
    r = await post("/messages", data={"token": TOKEN, "to": PEER, "text": "hi"}, files={"file": ("a.pdf", samples.PDF)})
    assert err(r) == (400, "INVALID_MESSAGE")
    r = await post("/messages", data={"token": OTHER, "to": PEER}, files={"file": ("a.pdf", samples.PDF)})
    assert err(r) == (404, "DEVICE_NOT_FOUND")
    assert await sent(gw) == []


async def test_bad_media_each_has_its_code_and_nothing_is_sent(gw: Gateway) -> None:
    await gw.pair()
    cases: list[tuple[dict[str, Any], tuple[int, str]]] = [
        ({"data": "this is not base64!"}, (400, "INVALID_MEDIA")),
        ({"data": ""}, (400, "INVALID_MEDIA")),
        ({"data": b64(samples.PDF), "type": "image"}, (400, "INVALID_MEDIA")),
        ({"data": b64(samples.PDF), "type": "hologram"}, (400, "INVALID_MEDIA")),
        ({}, (400, "INVALID_MEDIA")),
        ({"data": b64(samples.PDF), "id": "med_x"}, (400, "INVALID_MEDIA")),
        ({"id": "med_unknown"}, (400, "INVALID_MEDIA")),
        ({"url": "ftp://example.com/a.png"}, (400, "INVALID_MEDIA")),
        ({"url": "http://127.0.0.1:9/a.png"}, (400, "MEDIA_FETCH_FAILED")),
        ({"url": "http://10.1.2.3/a.png"}, (400, "MEDIA_FETCH_FAILED")),
    ]
    for media, expected in cases:
        assert err(await send(gw, media)) == expected, media
    assert err(
        await gw.http.post("/messages", json={"token": TOKEN, "to": PEER, "text": "x", "media": {"data": "AA=="}})
    ) == (
        400,
        "INVALID_MESSAGE",
    )
    assert await sent(gw) == []
    assert await gw.rt.store.media_total_bytes() == 0  # nothing decoded for a failed send is kept


async def test_media_codes_come_after_invalid_message_and_before_device_not_found(gw: Gateway) -> None:
    r = await gw.http.post("/messages", json={"token": TOKEN, "to": PEER, "media": {"data": "!!"}})
    assert err(r) == (400, "INVALID_MEDIA")  # the device does not even exist: media is checked first
    r = await gw.http.post(
        "/messages", json={"token": TOKEN, "to": PEER, "media": {"data": "!!", "caption": "x" * 65_537}}
    )
    assert err(r) == (400, "INVALID_MESSAGE")
    r = await gw.http.post("/messages", json={"token": TOKEN, "to": "1", "media": {"data": "!!"}})
    assert err(r) == (400, "INVALID_PHONE")
    r = await gw.http.post("/messages", json={"token": TOKEN, "to": PEER, "media": {"data": b64(samples.PDF)}})
    assert err(r) == (404, "DEVICE_NOT_FOUND")


async def test_a_url_that_times_out(gateway_factory: Callable[..., Any]) -> None:
    gw: Gateway = await gateway_factory(media_fetch_allow_private=True, media_fetch_timeout_ms=300)
    await gw.pair()
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    try:
        r = await send(gw, {"url": f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/slow.jpg"})
    finally:
        release.set()
        server.close()
    assert err(r) == (400, "MEDIA_FETCH_FAILED") and "timed out" in r.json()["error"]["message"]


async def test_base64_over_the_limit_is_media_too_large(gateway_factory: Callable[..., Any]) -> None:
    gw: Gateway = await gateway_factory(media_max_bytes=50_000)
    await gw.pair()
    assert err(await send(gw, {"data": b64(b"\1" * 60_000)})) == (413, "MEDIA_TOO_LARGE")
    body = {"token": TOKEN, "to": PEER, "media": {"data": b64(b"\1" * 200_000)}}  # over the gate's bound too
    assert err(await gw.http.post("/messages", json=body)) == (413, "MEDIA_TOO_LARGE")


async def test_another_accounts_upload_cannot_be_sent(gw: Gateway, tenants: Tenants) -> None:
    alice, bob = await tenants.signup("alice"), await tenants.signup("bob")
    up = (await alice.http.post("/media", files={"file": ("a.pdf", samples.PDF)})).json()["data"]
    await bob.http.post("/devices", json={"token": OTHER})
    r = await bob.http.post("/messages", json={"token": OTHER, "to": PEER, "media": {"id": up["id"]}})
    assert err(r) == (400, "INVALID_MEDIA")


async def test_idempotency_key_with_media(gw: Gateway) -> None:
    await gw.pair()
    headers = {"Idempotency-Key": "media-1"}
    body = {"token": TOKEN, "to": PEER, "media": {"data": b64(samples.PDF), "caption": "once"}}
    first = await gw.http.post("/messages", json=body, headers=headers)
    again = await gw.http.post("/messages", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["data"] == first.json()["data"]
    assert len(await sent(gw)) == 1
    other = {**body, "media": {**body["media"], "caption": "twice"}}
    assert err(await gw.http.post("/messages", json=other, headers=headers)) == (400, "INVALID_REQUEST")


async def test_mentions_become_jids(gw: Gateway) -> None:
    await gw.pair()
    r = await send(gw, {"data": b64(samples.png())}, mentions=["0198765432"])
    assert r.status_code == 200, r.text
    r = await gw.http.post("/messages", json={"token": TOKEN, "to": PEER, "text": "hi @x", "mentions": ["60198765432"]})
    assert r.status_code == 200, r.text
    image, text = await sent(gw)
    assert image["mentions"] == text["mentions"] == ["60198765432"]
    assert text["text"] == "hi @x"


async def test_media_replies_quote_a_stored_message_and_unknown_ids_are_not_found(gw: Gateway) -> None:
    await gw.pair()
    r = await gw.http.post(f"/sandbox/devices/{TOKEN}/incoming", json={"from": PEER, "text": "send me the invoice"})
    quoted = r.json()["data"]["id"]

    async def stored() -> bool:
        return (await gw.http.get(f"/devices/{TOKEN}/messages/{quoted}")).status_code == 200

    await gw.until(stored)
    r = await send(gw, {"data": b64(samples.PDF), "filename": "i.pdf"}, replyTo=quoted)
    assert r.status_code == 200, r.text
    r = await gw.http.post(
        "/messages",
        data={"token": TOKEN, "to": PEER, "replyTo": quoted},
        files={"file": ("i.pdf", samples.PDF, "application/pdf")},
    )
    assert r.status_code == 200, r.text
    json_reply, multipart_reply = await sent(gw)
    assert json_reply["replyTo"]["messageId"] == multipart_reply["replyTo"]["messageId"] == quoted
    r = await send(gw, {"data": b64(samples.PDF)}, replyTo="3EB0NEVERSTORED0000")
    assert err(r) == (404, "NOT_FOUND")
    assert len(await sent(gw)) == 2
