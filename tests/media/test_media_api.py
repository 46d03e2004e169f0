"""POST/GET/DELETE /media over HTTP: uploads (multipart and raw), ownership, signed links, limits."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.media import samples
from tests.support.accounts import Tenants
from tests.support.errors import assert_error
from tests.support.gateway import Gateway
from tests.support.poll import until
from tests.support.streaming import post_measuring_peak


async def upload(gw: Gateway, data: bytes, name: str = "a.png", ctype: str = "image/png") -> dict[str, object]:
    r = await gw.http.post("/media", files={"file": (name, data, ctype)})
    assert r.status_code == 200, r.text
    d: dict[str, object] = r.json()["data"]
    return d


async def test_multipart_upload_then_fetch_and_delete(gw: Gateway) -> None:
    data = samples.png()
    d = await upload(gw, data, "photo.png", "application/octet-stream")
    assert d["mimetype"] == "image/png" and d["size"] == len(data) and d["filename"] == "photo.png"
    assert d["sha256"] == hashlib.sha256(data).hexdigest() and str(d["expiresAt"]).endswith("Z")
    r = await gw.http.get(f"/media/{d['id']}")
    assert r.status_code == 200 and r.content == data and r.headers["content-type"] == "image/png"
    assert "photo.png" in r.headers["content-disposition"]
    r = await gw.http.delete(f"/media/{d['id']}")
    assert r.status_code == 200 and r.json()["data"] == {"id": d["id"], "deleted": True}
    assert_error(await gw.http.get(f"/media/{d['id']}"), 404, "NOT_FOUND")
    assert_error(await gw.http.delete(f"/media/{d['id']}"), 404, "NOT_FOUND")


async def test_raw_body_upload_with_filename(gw: Gateway) -> None:
    r = await gw.http.post(
        "/media?filename=invoice.pdf", content=samples.PDF, headers={"Content-Type": "application/pdf"}
    )
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["mimetype"] == "application/pdf" and d["filename"] == "invoice.pdf"


async def test_the_mimetype_comes_from_the_bytes_not_the_caller(gw: Gateway) -> None:
    r = await gw.http.post("/media", content=samples.PDF, headers={"Content-Type": "image/jpeg"})
    assert r.json()["data"]["mimetype"] == "application/pdf"


async def test_bad_uploads(gw: Gateway) -> None:
    assert_error(await gw.http.post("/media", files={"file": ("e.txt", b"", "text/plain")}), 400, "INVALID_MEDIA")
    assert_error(await gw.http.post("/media", content=b"", headers={"Content-Type": "image/png"}), 400, "INVALID_MEDIA")
    r = await gw.http.post("/media", data={"caption": "no file here"}, files={"other": ("x", b"1")})
    assert_error(r, 400, "INVALID_MEDIA")
    assert "no 'file' part" in r.json()["error"]["message"]
    r = await gw.http.post("/media", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data"})
    assert_error(r, 400, "INVALID_REQUEST")
    assert list((gw.settings.data_dir / "media" / "tmp").iterdir()) == []


async def test_a_70_mb_upload_is_media_too_large(gw: Gateway) -> None:
    big = b"\0" * (70 * 1024 * 1024)
    r = await gw.http.post("/media", content=big, headers={"Content-Type": "application/octet-stream"})
    assert_error(r, 413, "MEDIA_TOO_LARGE")


async def test_a_streamed_upload_over_the_limit_leaves_nothing(
    gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    gw: Gateway = await gateway_factory(media_max_bytes=100_000)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"\1" * 10_000

    assert_error(await gw.http.post("/media", content=chunks()), 413, "MEDIA_TOO_LARGE")
    # a multipart file over the limit, inside a body the gate lets through (the part is counted)
    r = await gw.http.post("/media", files={"file": ("big.bin", b"\1" * 100_001, "application/octet-stream")})
    assert_error(r, 413, "MEDIA_TOO_LARGE")
    assert list((tmp_path / "media" / "tmp").iterdir()) == []
    assert [p for p in (tmp_path / "media").iterdir() if p.name != "tmp"] == []


async def test_other_accounts_media_is_not_found(gw: Gateway, tenants: Tenants) -> None:
    alice, bob = await tenants.signup("alice"), await tenants.signup("bob")
    r = await alice.http.post("/media", files={"file": ("a.pdf", samples.PDF)})
    mid = r.json()["data"]["id"]
    assert (await alice.http.get(f"/media/{mid}")).status_code == 200
    assert_error(await bob.http.get(f"/media/{mid}"), 404, "NOT_FOUND")
    assert_error(await bob.http.delete(f"/media/{mid}"), 404, "NOT_FOUND")
    assert (await gw.http.get(f"/media/{mid}")).status_code == 200  # the admin sees every account's
    assert (await alice.http.get(f"/media/{mid}")).status_code == 200


async def test_without_a_key_or_signature_is_unauthorized(gw: Gateway) -> None:
    d = await upload(gw, samples.png())
    assert_error(await gw.anon.get(f"/media/{d['id']}"), 401, "UNAUTHORIZED")
    assert_error(await gw.anon.post("/media", content=b"x"), 401, "UNAUTHORIZED")


async def test_a_signed_link_works_without_a_key_until_it_expires(gw: Gateway) -> None:
    data = samples.png()
    d = await upload(gw, data)
    svc = gw.rt.media
    url = svc.signed_url(d["id"])
    assert url.startswith(gw.settings.base_url + f"/media/{d['id']}?exp=")
    path = url[len(gw.settings.base_url) :]
    r = await gw.anon.get(path)
    assert r.status_code == 200 and r.content == data
    assert_error(await gw.anon.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB")), 403, "FORBIDDEN")
    assert_error(await gw.anon.get(path.replace("exp=", "exp=1")), 403, "FORBIDDEN")
    other = await upload(gw, samples.jpeg())
    assert_error(await gw.anon.get(path.replace(str(d["id"]), str(other["id"]))), 403, "FORBIDDEN")
    svc.clock = lambda: 10**12  # far past the expiry
    assert_error(await gw.anon.get(path), 403, "FORBIDDEN")


async def test_active_content_downloads_and_never_runs_on_the_gateway_origin(gw: Gateway) -> None:
    """An HTML or SVG file opened from the gateway's origin would run its script with the console's session
    cookie: it is served as an attachment, and every media answer (signed link too) sandboxes itself."""
    html = b"<!doctype html><html><body><script>fetch('/devices')</script></body></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
    for data, name in ((html, "page.html"), (svg, "logo.svg")):
        d = await upload(gw, data, name, "text/plain")
        assert d["mimetype"] in ("text/html", "image/svg+xml"), d
        path = gw.rt.media.signed_url(str(d["id"]))[len(gw.settings.base_url) :]
        for r in (await gw.http.get(f"/media/{d['id']}"), await gw.anon.get(path)):
            assert r.status_code == 200 and r.content == data
            assert r.headers["content-disposition"].startswith("attachment;"), r.headers
            assert name in r.headers["content-disposition"]
            csp = r.headers["content-security-policy"]
            assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
            assert r.headers["x-content-type-options"] == "nosniff"
    for data, ctype in ((samples.png(), "image/png"), (samples.wav(0.1), "audio/wav")):
        d = await upload(gw, data, "shown", ctype)
        r = await gw.http.get(f"/media/{d['id']}")
        assert r.headers["content-disposition"].startswith("inline"), r.headers
        assert "sandbox" in r.headers["content-security-policy"]
    d = await upload(gw, samples.PDF, "invoice.pdf", "application/pdf")
    assert (await gw.http.get(f"/media/{d['id']}")).headers["content-disposition"].startswith("attachment;")


async def test_a_50_mb_upload_is_streamed_not_held(gw: Gateway) -> None:
    """50 MB through multipart: Python allocations stay far below the body's size (spooled, hashed
    incrementally). tracemalloc measures the allocations themselves, unlike RSS (the bench reads RSS)."""
    chunk = b"\x89PNG\r\n\x1a\n" + b"\7" * (1024 * 1024 - 8)
    size = 50 * 1024 * 1024
    boundary = "b0undary"

    async def body() -> AsyncIterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'.encode()
        for _ in range(size // len(chunk)):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    r, peak = await post_measuring_peak(gw.http, "/media", body(), boundary)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["size"] == size
    assert peak < 20 * 1024 * 1024, f"peak Python allocations {peak / 1e6:.1f} MB"


async def test_json_without_media_keeps_the_1_mib_limit_on_messages(gw: Gateway) -> None:
    big = b'{"token": "60123456789", "to": "60123", "text": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    assert_error(await gw.http.post("/messages", content=big), 413, "PAYLOAD_TOO_LARGE")
    assert_error(await gw.http.post("/devices", content=big), 413, "PAYLOAD_TOO_LARGE")


async def test_uploads_take_any_content_type_but_messages_only_json_or_multipart(gw: Gateway) -> None:
    """The gate's JSON-only rule (415) spares uploads: a raw body is the file's own type."""
    r = await gw.http.post("/media", content=samples.PDF, headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    r = await gw.http.post("/messages", content=b"token=1&to=2", headers={"Content-Type": "text/plain"})
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.live  # a real socket the client drops mid-body
async def test_a_client_that_disconnects_mid_upload_leaves_no_temp_file(gw: Gateway) -> None:
    tmp = gw.settings.data_dir / "media" / "tmp"
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.settings.port)
    head = (
        "POST /media?filename=big.bin HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        f"X-API-Key: {gw.settings.api_key}\r\nContent-Length: {10 * 1024 * 1024}\r\n\r\n"
    )
    writer.write(head.encode() + b"\1" * (1024 * 1024))
    await writer.drain()
    await until(lambda: list(tmp.iterdir()), 10, "the upload is being spooled")
    writer.close()  # gone, 9 MB short
    await until(lambda: not list(tmp.iterdir()), 10, "no temp file left")
    assert await gw.rt.store.media_total_bytes() == 0
    del reader
