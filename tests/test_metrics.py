"""``GET /metrics``: Prometheus text that moves with real traffic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import _MonotonicSum
from gateway.store.outbox import NewDelivery
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.net import free_port
from tests.support.webhook_receiver import Receiver


async def scrape(gw: Gateway) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of one scrape, keyed by (name, labels)."""
    r = await gw.http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_need_a_key(gw: Gateway) -> None:
    """Without a key /metrics is 401 in the envelope, like every non-public route."""
    r = await gw.anon.get("/metrics")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"


async def test_metrics_move_after_pair_send_and_incoming(gw: Gateway) -> None:
    """Pairing, sending and receiving move the device, message and HTTP series."""
    before = await scrape(gw)
    assert value(before, "wa_devices", status="connected") == 0
    await gw.pair(TOKEN)
    device = gw.rt.devices.get(TOKEN)
    await device.send_text(f"{OTHER}@s.whatsapp.net", "hello metrics")
    r = await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": OTHER, "text": "hi back"})
    assert r.status_code == 200, r.text
    await gw.until(lambda: device.row.messages_received == 1)

    after = await scrape(gw)
    assert value(after, "wa_devices", status="connected") == 1
    assert value(after, "wa_messages_sent_total") == 1
    assert value(after, "wa_messages_received_total") == 1
    created = value(after, "wa_http_requests_total", method="POST", route="/devices", status="200")
    assert created == 1
    scans = value(after, "wa_http_requests_total", method="POST", route="/sandbox/devices/{token}/scan", status="200")
    assert scans == 1
    assert value(after, "wa_http_request_duration_seconds_count", method="POST", route="/devices") == 1
    assert value(after, "wa_events_published_total") > value(before, "wa_events_published_total")


async def test_route_label_is_the_template_never_the_raw_path(gw: Gateway) -> None:
    """Tokens and made-up URLs do not become label values: templates or ``unmatched``."""
    await gw.http.get(f"/devices/{TOKEN}")
    await gw.http.get("/no/such/route/123")
    await gw.anon.get("/devices/60171222333")  # 401 before routing
    samples = await scrape(gw)
    routes = {dict(labels).get("route") for (name, labels) in samples if name == "wa_http_requests_total"}
    assert "/devices/{token}" in routes
    assert "unmatched" in routes
    assert not any(r and ("6012" in r or "6017" in r or "123" in r) for r in routes), routes
    assert value(samples, "wa_http_requests_total", method="GET", route="unmatched", status="401") == 1


@pytest.mark.live  # a WebSocket
async def test_websocket_clients_and_webhook_outcomes(gateway_factory: Callable[..., Any]) -> None:
    """WebSocket clients are counted; real deliveries move wa_webhook_deliveries_total{outcome}."""
    receiver = await Receiver(free_port(), respond=lambda hit: (500, {}) if hit.n == 1 else (200, {})).start()
    try:
        gw = await gateway_factory(webhook_url=receiver.url, webhook_retry_base_ms=10, webhook_retry_max_ms=20)
        before = await scrape(gw)
        assert (
            before[("wa_webhook_deliveries_total", frozenset({("outcome", "failed")}))] == 0
        )  # present from the start
        await gw.ws()
        await gw.pair(TOKEN)  # device.connected → one delivery: 500 then 200
        await receiver.wait_count(2)
        await gw.until(lambda: gw.rt.dispatcher.stats["delivered"] >= 1)
        gw.rt.metrics.webhook_outcome("failed")  # another sender's outcome lands in the same series
        samples = await scrape(gw)
    finally:
        await receiver.stop()
    assert value(samples, "wa_websocket_clients") == 1
    assert value(samples, "wa_webhook_deliveries_total", outcome="retry") == 1
    assert value(samples, "wa_webhook_deliveries_total", outcome="delivered") == 1
    assert value(samples, "wa_webhook_deliveries_total", outcome="failed") == 1


async def test_outbox_depth_and_oldest_pending_age(gw: Gateway) -> None:
    """Pending deliveries are counted and the oldest one's age is read against the metrics clock."""
    created = time.time() - 30
    rows = [
        NewDelivery(f"msg_{i}", "device.connected", TOKEN, None, "http://127.0.0.1:9/", b"{}", False, created + i)
        for i in range(3)
    ]
    # Port 9 refuses connections: a running dispatcher can only reschedule these, they stay pending.
    await gw.rt.store.enqueue(rows)
    gw.rt.metrics.clock = lambda: created + 100
    samples = await scrape(gw)
    assert value(samples, "wa_webhook_outbox", status="pending") == 3
    assert value(samples, "wa_webhook_outbox", status="failed") == 0
    assert value(samples, "wa_webhook_oldest_pending_age_seconds") == 100


async def test_two_apps_in_one_process_keep_separate_registries(
    gateway_factory: Callable[..., Any], tmp_path: Path
) -> None:
    """Each app has its own registry: traffic on one never shows on the other."""
    a = await gateway_factory(data_dir=tmp_path / "a")
    b = await gateway_factory(data_dir=tmp_path / "b")
    for _ in range(3):
        await a.http.get("/devices")
    sa, sb = await scrape(a), await scrape(b)
    assert value(sa, "wa_http_requests_total", method="GET", route="/devices", status="200") == 3
    assert value(sb, "wa_http_requests_total", method="GET", route="/devices", status="200") == 0


def test_message_totals_survive_a_stats_reset() -> None:
    """Per-device totals that drop (stats reset, device deleted) never make the counter go down."""
    acc = _MonotonicSum()
    assert acc.update({"a": 2, "b": 1}) == 3
    assert acc.update({"a": 5, "b": 1}) == 6
    assert acc.update({"a": 1}) == 7  # a was reset then sent 1; b deleted
    assert acc.update({"a": 1}) == 7


@pytest.mark.live  # a raw socket
async def test_a_client_gone_mid_body_is_counted_499_not_an_error(gw: Gateway) -> None:
    """A client that closes the connection before its declared body arrives: nothing to answer, no
    error logged with a stack trace, and the request is counted with status 499."""
    host, port = gw.base.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    key = gw.settings.api_key or ""
    writer.write(
        f"POST /messages HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
        'Content-Length: 200\r\n\r\n{"token": "6012'.encode()
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    async def counted() -> bool:
        return value(await scrape(gw), "wa_http_requests_total", method="POST", route="/messages", status="499") == 1

    await gw.until(counted)
    assert value(await scrape(gw), "wa_http_requests_total", method="POST", route="/messages", status="500") == 0


def test_a_cluster_nodes_series_name_the_node() -> None:
    """In a cluster each node's /metrics says whose they are (wa_build's ``node``); one process alone does not."""
    from prometheus_client import CollectorRegistry, generate_latest

    from gateway.metrics import Snapshot, _WithSnapshot

    snap = Snapshot({}, 0, 0, {}, 0.0, 0, 0, 0, {})
    clustered = generate_latest(_WithSnapshot(CollectorRegistry(), snap, "gateway-2")).decode()
    alone = generate_latest(_WithSnapshot(CollectorRegistry(), snap, None)).decode()
    assert 'node="gateway-2"' in clustered and "wa_build_info{" in clustered
    assert "node=" not in alone
