"""Media against the real process (``python -m gateway``, sandbox driver), as a CRM sees it: upload,
send by upload id, by multipart and by URL (from a local HTTP server), receive an image through a signed
webhook, fetch its signed link without a key — and a tampered link is refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from standardwebhooks import Webhook

from tests.media import samples
from tests.support.constants import API_KEY, OTHER, TOKEN
from tests.support.proc import ServerProcess
from tests.support.webhook_receiver import Hit, Receiver

pytestmark = pytest.mark.e2e

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileServer:
    """A small HTTP/1.1 server on 127.0.0.1 serving fixed files (what a CRM's CDN would be)."""

    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.files = files
        self.requests: list[str] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            self.requests.append(path)
            found = self.files.get(path)
            if found is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                mime, body = found
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {mime}\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def last_sent(c: httpx.AsyncClient, message_id: str) -> dict[str, Any]:
    """The simulated WhatsApp's record of ``message_id`` (what it received, with the bytes' sha256)."""
    r = await c.get(f"/sandbox/devices/{TOKEN}/sent")
    assert r.status_code == 200, r.text
    found = [m for m in r.json()["data"]["messages"] if m["id"] == message_id]
    assert len(found) == 1, r.text
    return found[0]


async def send(c: httpx.AsyncClient, **kw: Any) -> dict[str, Any]:
    r = await c.post("/messages", **kw)
    assert r.status_code == 200, r.text
    return await last_sent(c, r.json()["data"]["messageId"])


def received(hits: list[Hit]) -> list[Hit]:
    return [h for h in hits if h.json()["event"] == "message.received"]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_media_round_trip_with_the_real_process(
    tmp_path: Any, servers: list[ServerProcess], receiver: Receiver
) -> None:
    gw = ServerProcess(
        tmp_path,
        WEBHOOK_URL=receiver.url,
        WEBHOOK_SECRET=SECRET,
        MEDIA_FETCH_ALLOW_PRIVATE="true",  # the test's "CDN" is on 127.0.0.1
    )
    servers.append(gw)
    await asyncio.to_thread(gw.start)
    pdf, png, jpeg = samples.PDF, samples.png((80, 60), (10, 90, 200)), samples.jpeg((90, 70))
    async with httpx.AsyncClient(base_url=gw.base, headers={"X-API-Key": API_KEY}, timeout=30) as c:
        assert (await c.post("/devices", json={"token": TOKEN})).status_code == 200
        assert (await c.post(f"/sandbox/devices/{TOKEN}/scan")).json()["data"]["status"] == "connected"

        # Upload once (multipart), read it back, send it twice by id: WhatsApp gets the same bytes.
        r = await c.post("/media", files={"file": ("invoice 0042.pdf", pdf, "application/pdf")})
        assert r.status_code == 200, r.text
        upload = r.json()["data"]
        assert upload["sha256"] == sha(pdf) and upload["size"] == len(pdf)
        assert upload["mimetype"] == "application/pdf" and upload["filename"] == "invoice 0042.pdf"
        r = await c.get(f"/media/{upload['id']}")
        assert r.status_code == 200 and r.content == pdf
        for caption in ("Invoice 0042", "Invoice 0042 (again)"):
            sent = await send(c, json={"token": TOKEN, "to": OTHER, "media": {"id": upload["id"], "caption": caption}})
            assert sent["type"] == "document" and sent["text"] == caption
            assert sent["media"]["sha256"] == sha(pdf) and sent["media"]["filename"] == "invoice 0042.pdf"

        # Multipart POST /messages: the file part, typed from its bytes.
        sent = await send(
            c,
            data={"token": TOKEN, "to": OTHER, "caption": "Your parcel"},
            files={"file": ("parcel.png", png, "application/octet-stream")},
        )
        assert sent["type"] == "image" and sent["text"] == "Your parcel"
        assert sent["media"]["sha256"] == sha(png) and sent["media"]["mimetype"] == "image/png"

        # By URL: the gateway fetches it itself (private addresses allowed for this test only).
        async with FileServer({"/p/123.jpg": ("image/jpeg", jpeg)}) as cdn:
            sent = await send(c, json={"token": TOKEN, "to": OTHER, "media": {"url": cdn.url("/p/123.jpg")}})
            assert cdn.requests == ["/p/123.jpg"]
            r = await c.post("/messages", json={"token": TOKEN, "to": OTHER, "media": {"url": cdn.url("/gone.jpg")}})
            assert r.status_code == 400 and r.json()["error"]["code"] == "MEDIA_FETCH_FAILED", r.text
        assert sent["type"] == "image" and sent["media"]["sha256"] == sha(jpeg)
        assert sent["media"]["mimetype"] == "image/jpeg"

        # An incoming image: a signed message.received webhook whose media.url works without a key.
        photo = samples.png((120, 90), (200, 40, 40))
        body = {"from": OTHER, "name": "Ali", "media": {"data": base64.b64encode(photo).decode(), "caption": "broken"}}
        r = await c.post(f"/sandbox/devices/{TOKEN}/incoming", json=body)
        assert r.status_code == 200, r.text
        message_id = r.json()["data"]["id"]

    hits = await receiver.wait(lambda hits: len(received(hits)) >= 1, timeout=15)
    hit = received(hits)[0]
    event = Webhook(SECRET).verify(hit.body, hit.headers)  # Standard Webhooks signature
    assert hit.headers["x-webhook-signature"] == hmac.new(SECRET.encode(), hit.body, hashlib.sha256).hexdigest()
    data = event["data"]
    assert data["id"] == message_id and data["type"] == "image" and data["text"] == "broken"
    media = data["media"]
    assert media["status"] == "stored" and media["type"] == "image" and media["mimetype"] == "image/png"
    assert media["sha256"] == sha(photo) and media["size"] == len(photo)
    url = media["url"]
    assert url.startswith(f"{gw.base}/media/{media['id']}?")

    async with httpx.AsyncClient(timeout=10) as anonymous:  # no API key
        r = await anonymous.get(url)
        assert r.status_code == 200 and sha(r.content) == sha(photo)
        assert r.headers["content-type"] == "image/png"
        sig = dict(parse_qsl(urlsplit(url).query))["sig"]
        tampered_sig = sig[:-1] + ("A" if sig[-1] != "A" else "B")
        exp = dict(parse_qsl(urlsplit(url).query))["exp"]
        for bad in (
            with_query(url, sig=tampered_sig),
            with_query(url, exp=str(int(exp) + 3600)),  # a longer life than was signed
            with_query(url, exp=str(int(exp) - 10 * 86400)),  # expired (and not what was signed)
            url.replace(media["id"], upload["id"]),  # another media's id under this signature
        ):
            r = await anonymous.get(bad)
            assert r.status_code == 403 and r.json()["error"]["code"] == "FORBIDDEN", (bad, r.text)
        r = await anonymous.get(url.split("?", 1)[0])  # neither key nor signature
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"

    gw.signal()
    assert await asyncio.to_thread(gw.wait) == 0
