"""The envelope, error codes, request ids, auth, rate limit and body limits over real HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.constants import API_KEY, OTHER, TOKEN
from tests.support.errors import RFC3339, assert_error
from tests.support.gateway import Gateway


async def test_health_is_open_and_enveloped(gw: Gateway) -> None:
    """GET /health needs no key and answers the success envelope with message ok."""
    r = await gw.anon.get("/health")
    body = r.json()
    assert r.status_code == 200 and body["success"] is True and body["message"] == "ok"
    assert RFC3339.match(body["meta"]["timestamp"])
    uuid.UUID(body["meta"]["requestId"])


async def test_live_ready_and_detailed(gw: Gateway) -> None:
    """Liveness and readiness answer 200; detailed reports process figures and devices."""
    assert (await gw.anon.get("/health/live")).status_code == 200
    assert (await gw.anon.get("/health/ready")).status_code == 200
    assert (await gw.anon.get("/health/detailed")).status_code == 401
    await gw.pair()
    data = (await gw.http.get("/health/detailed")).json()["data"]
    assert data["deviceCount"] == 1 and data["devices"] == [{"token": TOKEN, "status": "connected"}]
    assert data["memoryRss"] > 1_000_000 and data["threads"] >= 1 and data["tasks"] >= 1
    assert data["uptime"] >= 0
    # one node: itself, running every device (a cluster lists every live node, CONTRACT §14)
    assert data["node"] == gw.app.state.settings.node_id and data["nodes"] == [{"id": data["node"], "devices": [TOKEN]}]


async def test_request_id_is_kept_when_well_formed(gw: Gateway) -> None:
    """A valid X-Request-ID is echoed; an invalid one is replaced by a UUID."""
    r = await gw.anon.get("/health", headers={"X-Request-ID": "abc.DEF_123-x"})
    assert r.headers["x-request-id"] == "abc.DEF_123-x" and r.json()["meta"]["requestId"] == "abc.DEF_123-x"
    r = await gw.anon.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    uuid.UUID(r.headers["x-request-id"])
    r = await gw.anon.get("/health", headers={"X-Request-ID": "a" * 65})
    uuid.UUID(r.headers["x-request-id"])


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {API_KEY}"}],
)
async def test_missing_or_wrong_key_is_unauthorized(gw: Gateway, headers: dict[str, str]) -> None:
    """Protected routes answer 401 UNAUTHORIZED without a valid key."""
    assert_error(await gw.anon.get("/devices", headers=headers), 401, "UNAUTHORIZED")


async def test_bearer_and_header_keys_both_work(gw: Gateway) -> None:
    """Authorization: Bearer and X-API-Key are both accepted."""
    assert (await gw.anon.get("/devices", headers={"Authorization": f"Bearer {API_KEY}"})).status_code == 200
    assert (await gw.anon.get("/devices", headers={"X-API-Key": API_KEY})).status_code == 200


async def test_unknown_route_and_wrong_method(gw: Gateway) -> None:
    """No such route → 404 NOT_FOUND; a known route with the wrong method → 405 METHOD_NOT_ALLOWED."""
    assert_error(await gw.http.get("/nope"), 404, "NOT_FOUND")
    assert_error(await gw.http.put("/devices"), 405, "METHOD_NOT_ALLOWED")


BAD_DEVICE_BODIES: list[tuple[Any, int, str]] = [
    (b"", 400, "INVALID_REQUEST"),
    (b"not json", 400, "INVALID_REQUEST"),
    (b"[1,2]", 400, "INVALID_REQUEST"),
    (b'"string"', 400, "INVALID_REQUEST"),
    (b'{"token": 60123456789}', 400, "INVALID_REQUEST"),
    (b'{"token": "60123456789", "method": 1}', 400, "INVALID_REQUEST"),
    (b'{"token": "60123456789", "name": ["x"]}', 400, "INVALID_REQUEST"),
    (b'{"token": "60123456789", "webhookEvents": ["nope"]}', 400, "INVALID_REQUEST"),
    (b'{"token": "60123456789", "webhookUrl": "ftp://x"}', 400, "INVALID_REQUEST"),
    (b"{}", 400, "MISSING_TOKEN"),
    (b'{"token": ""}', 400, "MISSING_TOKEN"),
    (b'{"token": "   "}', 400, "MISSING_TOKEN"),
    (b'{"token": "60123456789", "method": "sms"}', 400, "INVALID_METHOD"),
    (b'{"token": "", "method": "sms"}', 400, "MISSING_TOKEN"),
    (b'{"token": "60111111111"}', 400, "INVALID_PHONE"),
    (b'{"token": "../x"}', 400, "INVALID_PHONE"),
    (b'{"token": "../../etc/passwd"}', 400, "INVALID_PHONE"),
    (b'{"token": "6012345678\\u0000"}', 400, "INVALID_PHONE"),
    (b'{"token": "\xd9\xa6\xd9\xa0123456789"}', 400, "INVALID_PHONE"),
    (b'{"token": "abc", "method": "sms"}', 400, "INVALID_METHOD"),
]


@pytest.mark.parametrize(("raw", "status", "code"), BAD_DEVICE_BODIES)
async def test_bad_device_bodies_get_their_documented_code(gw: Gateway, raw: bytes, status: int, code: str) -> None:
    """Each malformed POST /devices body gets its code, in the contract's check order; the server stays healthy."""
    r = await gw.http.post("/devices", content=raw, headers={"Content-Type": "application/json"})
    assert_error(r, status, code)
    assert (await gw.anon.get("/health")).status_code == 200
    assert list(gw.settings.data_dir.glob("*.db")) == [gw.settings.data_dir / "gateway.db"]


async def test_huge_body_is_payload_too_large(gw: Gateway) -> None:
    """A body over 1 MiB → 413 PAYLOAD_TOO_LARGE (declared or streamed)."""
    big = b'{"token": "' + b"1" * (1024 * 1024 + 10) + b'"}'
    assert_error(await gw.http.post("/devices", content=big), 413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 100_000

    assert_error(await gw.http.post("/devices", content=chunks()), 413, "PAYLOAD_TOO_LARGE")
    assert (await gw.anon.get("/health")).status_code == 200


async def test_auth_is_checked_before_body_size(gw: Gateway) -> None:
    """Without a key, even a huge body is 401 first."""
    r = await gw.anon.post("/devices", content=b"x" * (2 * 1024 * 1024))
    assert_error(r, 401, "UNAUTHORIZED")


async def test_unknown_device_routes(gw: Gateway) -> None:
    """Device routes for a valid but unknown token → 404 DEVICE_NOT_FOUND; an invalid token → INVALID_PHONE."""
    for method, path in [
        ("GET", f"/devices/{TOKEN}"),
        ("PATCH", f"/devices/{TOKEN}"),
        ("DELETE", f"/devices/{TOKEN}"),
        ("GET", f"/devices/{TOKEN}/qr"),
        ("POST", f"/devices/{TOKEN}/disconnect"),
        ("POST", f"/devices/{TOKEN}/stats/reset"),
        ("GET", f"/devices/{TOKEN}/groups"),
        ("POST", f"/sandbox/devices/{TOKEN}/scan"),
    ]:
        kw: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        assert_error(await gw.http.request(method, path, **kw), 404, "DEVICE_NOT_FOUND")
    # An encoded slash never reaches a device route: the path has one more segment.
    assert_error(await gw.http.get("/devices/..%2Fx"), 404, "NOT_FOUND")
    assert_error(await gw.http.get("/devices/..%2E"), 400, "INVALID_PHONE")
    assert_error(await gw.http.get("/devices/abc"), 400, "INVALID_PHONE")


async def test_not_connected_device_answers_device_not_connected(gw: Gateway) -> None:
    """Groups of a pairing device → 500 DEVICE_NOT_CONNECTED; a scan of a connected one → INVALID_REQUEST."""
    await gw.post("/devices", {"token": TOKEN})
    assert_error(await gw.http.get(f"/devices/{TOKEN}/groups"), 500, "DEVICE_NOT_CONNECTED")
    await gw.post(f"/sandbox/devices/{TOKEN}/scan")
    assert_error(await gw.post(f"/sandbox/devices/{TOKEN}/scan"), 400, "INVALID_REQUEST")


async def test_rate_limit_answers_429_with_retry_after(gateway_factory: Any) -> None:
    """Over RATE_LIMIT_PER_MINUTE → 429 RATE_LIMITED with Retry-After; /health and the pages' static files
    are never limited (a page load fetches dozens of ES modules); the pages themselves are."""
    gw = await gateway_factory(rate_limit_per_minute=3)
    codes = [(await gw.http.get("/devices")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = await gw.http.get("/devices")
    assert_error(r, 429, "RATE_LIMITED")
    assert int(r.headers["retry-after"]) >= 1
    for _ in range(10):
        assert (await gw.anon.get("/health")).status_code == 200
        assert (await gw.anon.get("/static/js/main.js")).status_code == 200
    codes = [(await gw.anon.get("/")).status_code for _ in range(4)]
    assert codes[-1] == 429


async def test_cors_headers_only_when_configured(gateway_factory: Any) -> None:
    """CORS_ORIGINS set → allowed origin echoed; unset → no CORS headers."""
    plain = await gateway_factory()
    r = await plain.anon.get("/health", headers={"Origin": "http://crm.example"})
    assert "access-control-allow-origin" not in r.headers
    cors = await gateway_factory(cors_origins=("http://crm.example",), port=plain.settings.port + 1)
    r = await cors.anon.get("/health", headers={"Origin": "http://crm.example"})
    assert r.headers["access-control-allow-origin"] == "http://crm.example"


async def test_cors_preflight_needs_no_key_and_refusals_stay_readable(gateway_factory: Any) -> None:
    """With CORS_ORIGINS: a preflight (no credentials, as browsers send it) is answered, with a request
    id; the gate's own 401 carries the CORS header so the page can read it."""
    cors = await gateway_factory(cors_origins=("http://crm.example",))
    origin = {"Origin": "http://crm.example"}
    r = await cors.anon.options(
        "/messages",
        headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://crm.example"
    assert r.headers["x-request-id"]
    r = await cors.anon.get("/devices", headers=origin)
    assert_error(r, 401, "UNAUTHORIZED")
    assert r.headers["access-control-allow-origin"] == "http://crm.example"
    r = await cors.http.get("/devices", headers=origin)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://crm.example"
    plain = await gateway_factory()
    r = await plain.anon.options("/messages", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert_error(r, 401, "UNAUTHORIZED")  # no CORS configured: an OPTIONS is just an unauthenticated request


@pytest.mark.parametrize("query", ["offset=99999999999999999999999", "offset=-1", "offset=1e3", "limit=0", "limit=٣"])
async def test_query_numbers_out_of_range_are_invalid_request(gw: Gateway, query: str) -> None:
    """Query numbers that are not whole numbers within range → 400 INVALID_REQUEST, never a 500."""
    assert_error(await gw.http.get(f"/contacts/{TOKEN}?{query}"), 400, "INVALID_REQUEST")
    assert_error(await gw.http.get(f"/webhooks/deliveries?{query.replace('offset', 'limit')}"), 400, "INVALID_REQUEST")


async def test_file_downloads_have_their_own_routes(gw: Gateway) -> None:
    """``/devices/{token}/qr.png|.svg`` and ``/contacts/{token}/export`` answer the same files as the
    ``?format=`` forms, with the same errors (a route of its own per file: generated clients need one)."""
    assert_error(await gw.http.get(f"/devices/{TOKEN}/qr.png"), 404, "DEVICE_NOT_FOUND")
    assert_error(await gw.http.get(f"/contacts/{TOKEN}/export"), 404, "DEVICE_NOT_FOUND")
    assert_error(await gw.http.get("/contacts/abc/export"), 400, "INVALID_PHONE")
    assert_error(await gw.http.get(f"/contacts/{TOKEN}/export?limit=0"), 400, "INVALID_REQUEST")
    await gw.post("/devices", {"token": TOKEN})

    async def has_qr() -> bool:
        return bool((await gw.http.get(f"/devices/{TOKEN}/qr")).json()["data"]["hasQR"])

    await gw.until(has_qr, 10)
    for suffix, media in (("png", "image/png"), ("svg", "image/svg+xml")):
        own = await gw.http.get(f"/devices/{TOKEN}/qr.{suffix}")
        assert own.status_code == 200 and own.headers["content-type"] == media
        assert own.content == (await gw.http.get(f"/devices/{TOKEN}/qr?format={suffix}")).content
    await gw.post(f"/sandbox/devices/{TOKEN}/scan")
    assert_error(await gw.http.get(f"/devices/{TOKEN}/qr.png"), 404, "NOT_FOUND")  # connected: no QR
    await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": OTHER, "text": "hi"})

    # The pump stores the contact just after the sandbox answers: wait for it (with a deadline).
    async def stored() -> int:
        return int((await gw.http.get(f"/contacts/{TOKEN}")).json()["data"]["total"])

    await gw.until(stored, 10)
    export = await gw.http.get(f"/contacts/{TOKEN}/export?limit=all")
    assert export.headers["content-type"].startswith("text/csv")
    assert export.headers["content-disposition"] == f'attachment; filename="contacts-{TOKEN}.csv"'
    assert export.text == (await gw.http.get(f"/contacts/{TOKEN}?format=csv&limit=all")).text
    assert export.text.splitlines()[1].startswith(f"{OTHER},")
