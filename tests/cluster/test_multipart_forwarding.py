"""Multipart sends on any node (CONTRACT §14, §11): ``POST /messages`` with a ``file`` part, for a device
another node runs, is stored as an upload by the node it reached (the media store is shared) and sent by
the device's node (gateway/api/forwarding.py ``forward_upload``) — the file never travels the bus, so it
may be larger than a bus message — answered as if local: the same codes, the same ``Idempotency-Key``
(fingerprinted by the file's SHA-256 wherever the call lands).

Two in-process nodes on one MEDIA_DIR; node a runs the device and serves it (``on_acquired``), node b
gets the calls."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.test_forwarding import same_answer
from tests.cluster.test_invalidations import signup
from tests.media import samples
from tests.support.bus import synced
from tests.support.constants import OTHER, TOKEN
from tests.support.errors import assert_error
from tests.support.gateway import Gateway
from tests.support.nodes import owned_by_a, start_nodes
from tests.support.streaming import post_measuring_peak

NOWHERE = "60123456733"


@pytest.fixture
async def nodes(
    pg_migrated: str, nats_url: str, gateway_factory: Callable[..., Awaitable[Gateway]], tmp_path: Path
) -> list[Gateway]:
    """``n0`` and ``n1`` sharing one MEDIA_DIR, as a cluster's nodes mount one volume."""
    return await start_nodes(gateway_factory, tmp_path, pg_migrated, nats_url, media_dir=tmp_path / "media")


async def send_file(
    client: httpx.AsyncClient, data: bytes, token: str = TOKEN, headers: dict[str, str] | None = None, **fields: str
) -> httpx.Response:
    form = {"token": token, "to": OTHER, **fields}
    return await client.post("/messages", data=form, files={"file": ("report.bin", data, "application/octet-stream")},
                             headers=headers)  # fmt: skip


async def sent(a: Gateway) -> list[dict[str, Any]]:
    r = await a.http.get(f"/sandbox/devices/{TOKEN}/sent")
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["data"]["messages"]
    return messages


async def uploads(gw: Gateway) -> int:
    return len(await gw.rt.store.oldest_media())


async def test_a_file_larger_than_a_bus_message_is_sent_through_another_node(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    data = os.urandom(2 * 1024 * 1024)
    assert len(data) > b.rt.forwarder.max_body  # it cannot have been carried in the forwarded call
    r = await send_file(b.http, data, type="document", caption="the report", filename="q3.bin")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["messageId"] and r.json()["message"] == "message sent"
    [m] = await sent(a)
    assert m["type"] == "document" and m["text"] == "the report" and m["to"] == f"{OTHER}@s.whatsapp.net"
    assert m["media"]["sha256"] == hashlib.sha256(data).hexdigest() and m["media"]["size"] == len(data)
    assert m["media"]["filename"] == "q3.bin"
    assert b.rt.forwarder.forwarded == 1 and a.rt.forwarder.served == 1
    assert await uploads(a) == 1  # the one upload the send used, as a local multipart send leaves


async def test_a_50_mb_file_through_another_node_is_streamed_not_held(nodes: list[Gateway]) -> None:
    """As on one node (tests/media/test_media_api.py): the node the call reaches spools the file part;
    nothing reads the whole body into memory to find the device, nor carries it over the bus."""
    a, b = await owned_by_a(nodes)
    chunk = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\7" * (1024 * 1024 - 9 - 1024)
    size = 50 * 1024 * 1024
    boundary = "b0undary"
    digest = hashlib.sha256()
    for _ in range(size // len(chunk)):
        digest.update(chunk)

    async def body() -> AsyncIterator[bytes]:
        # The file first, the device after it: only the whole form names the device.
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n'.encode()
        for _ in range(size // len(chunk)):
            yield chunk
        for name, value in (("to", OTHER), ("type", "document"), ("token", TOKEN)):
            yield f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode()
        yield f"\r\n--{boundary}--\r\n".encode()

    r, peak = await post_measuring_peak(b.http, "/messages", body(), boundary)
    assert r.status_code == 200, r.text
    assert peak < 20 * 1024 * 1024, f"peak Python allocations {peak / 1e6:.1f} MB"
    [m] = await sent(a)
    assert m["media"]["sha256"] == digest.hexdigest() and m["media"]["size"] == size
    assert b.rt.forwarder.forwarded == 1


async def test_errors_are_the_owners_and_the_same_as_local(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    pdf = samples.PDF
    for fields in ({"voiceNote": "true"}, {"type": "image"}, {"replyTo": "NOSUCHMESSAGE"}):
        there, here = await send_file(b.http, pdf, **fields), await send_file(a.http, pdf, **fields)
        same_answer(there, here)
        assert there.status_code in (400, 404), there.text
    assert_error(await send_file(b.http, pdf, type="image"), 400, "INVALID_MEDIA")
    assert_error(await send_file(b.http, pdf, replyTo="NOSUCHMESSAGE"), 404, "NOT_FOUND")
    assert b.rt.forwarder.forwarded == 5
    assert await sent(a) == []
    # A failed media check drops the upload it made, wherever the call came in (as on one node).
    assert await uploads(a) == 3  # the replyTo ones only: refused after their media was prepared, as locally


async def test_an_idempotent_repeat_is_replayed_whichever_node_it_reaches(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    data = samples.PDF
    key = {"Idempotency-Key": "upload-1"}
    first = await send_file(b.http, data, headers=key)
    assert first.status_code == 200 and first.headers["idempotent-replayed"] == "false", first.text
    for client in (b.http, a.http):  # through the other node again, and straight to the device's node
        again = await send_file(client, data, headers=key)
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true" and again.json()["data"] == first.json()["data"]
    assert len(await sent(a)) == 1
    assert await uploads(a) == 1  # the replays' uploads were dropped again
    other = await send_file(b.http, data + b"\n", headers=key)  # the same key, another file
    assert_error(other, 400, "INVALID_REQUEST")
    assert len(await sent(a)) == 1 and await uploads(a) == 1


async def test_another_accounts_device_is_not_found_through_any_node(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    mallory = await signup(a, "mallory")
    keyed = {"X-API-Key": mallory["apiKey"]}
    there = await send_file(b.client(headers=keyed), samples.PDF)
    same_answer(there, await send_file(a.client(headers=keyed), samples.PDF))
    assert_error(there, 404, "DEVICE_NOT_FOUND")
    assert await sent(a) == []


async def test_no_owner_or_the_bus_down_is_device_moving_and_keeps_no_upload(nodes: list[Gateway]) -> None:
    a, b = await owned_by_a(nodes)
    await a.rt.forwarder.on_released(TOKEN)  # between owners
    await synced(a.rt.bus)
    r = await send_file(b.http, samples.PDF)
    assert_error(r, 503, "DEVICE_MOVING")
    assert r.headers["retry-after"] == "2"
    assert await uploads(b) == 0
    await a.rt.forwarder.on_acquired(TOKEN)
    await b.rt.bus.stop()
    assert_error(await send_file(b.http, samples.PDF), 503, "DEVICE_MOVING")
    assert await uploads(b) == 0
    # A device no node has is answered where the call arrived, as on one node.
    assert_error(await send_file(b.http, samples.PDF, token=NOWHERE), 404, "DEVICE_NOT_FOUND")
    assert await sent(a) == []


async def test_a_client_cannot_name_an_upload_for_its_file_part(nodes: list[Gateway]) -> None:
    """The header that carries a forwarded send's upload counts on a forwarded call only."""
    a, b = await owned_by_a(nodes)
    stored = (await a.http.post("/media", files={"file": ("a.pdf", samples.PDF, "application/pdf")})).json()["data"]
    forged = {"Wa-Forwarded-Upload": stored["id"]}
    for gw in (a, b):
        r = await gw.http.post("/messages", data={"token": TOKEN, "to": OTHER}, headers=forged,
                               files={"unrelated": ("x.txt", b"x", "text/plain")})  # fmt: skip
        assert_error(r, 400, "INVALID_MEDIA")  # no 'file' part: the header was ignored
    assert await sent(a) == []
