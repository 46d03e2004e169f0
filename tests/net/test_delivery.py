"""Webhook deliveries through the real guarded client (no fake at the seam): what counts as delivered
when the receiver misbehaves, and DNS rebinding never reaching 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.net import GuardedClient
from gateway.settings import Settings
from gateway.store import NewDelivery, Store
from gateway.store.outbox import OutboxRow
from gateway.webhooks.dispatcher import Dispatcher
from tests.support.hostile import PUBLIC, Answers, FakeInternet, hostile, read_head


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path)
    yield s
    await s.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def deliver(store: Store, client: GuardedClient, url: str, *, tenant: bool, attempts: int = 1) -> OutboxRow:
    """Enqueue one delivery to ``url`` and run ``attempts`` attempts (the clock jumps past each backoff)."""
    clock = Clock()
    settings = replace(Settings(), webhook_timeout_ms=5000, webhook_max_attempts=5)
    d = Dispatcher(settings, store, http=client, clock=clock, rand=lambda: 1.0)
    await store.enqueue(
        [
            NewDelivery(
                webhook_id="msg_1",
                event="message.received",
                token="60123456789",
                owner_id=7 if tenant else None,
                url=url,
                body=b'{"event":"message.received"}',
                check_private=tenant,
                created_at=clock(),
            )
        ]
    )
    try:
        for _ in range(attempts):
            await d.deliver_due()
            await d.settle()
            clock.now += 7200
        (row,) = await store.list_deliveries(None, None, None, 10)
    finally:
        await d.stop(grace_s=0.1)
    return row


@pytest.fixture
async def client() -> AsyncIterator[GuardedClient]:
    c = GuardedClient()
    yield c
    await c.close()


async def test_a_200_cut_short_is_not_delivered(store: Store, client: GuardedClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()

    async with hostile(script) as server:
        row = await deliver(store, client, server.url(), tenant=False)
    assert (row.status, row.attempts, row.delivered_at) == ("pending", 1, None)
    assert row.last_error is not None and "broke off" in row.last_error


async def test_endless_headers_fail_the_attempt(store: Store, client: GuardedClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(50_000):
            writer.write(b"X-Pad: " + b"a" * 4000 + b"\r\n")
            await writer.drain()

    async with hostile(script) as server:
        row = await deliver(store, client, server.url(), tenant=False)
    assert row.status == "pending" and row.last_error is not None and "malformed response" in row.last_error


async def test_a_redirect_counts_as_its_status(store: Store, client: GuardedClient) -> None:
    async with hostile(read_head) as elsewhere:

        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_head(reader)
            writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\n\r\n" % elsewhere.url().encode())
            await writer.drain()

        async with hostile(script) as server:
            row = await deliver(store, client, server.url(), tenant=False)
    assert (row.status, row.last_error) == ("pending", "HTTP 307 (redirects are not followed)")
    assert elsewhere.connections == 0


async def test_a_tenant_url_at_a_literal_loopback_is_refused_unsent(store: Store, client: GuardedClient) -> None:
    async with hostile(read_head) as server:
        row = await deliver(store, client, server.url(), tenant=True)
    assert row.status == "failed" and row.last_error is not None and row.last_error.startswith("blocked")
    assert server.connections == 0


@pytest.fixture
def internet(monkeypatch: pytest.MonkeyPatch) -> FakeInternet:
    return FakeInternet().install(monkeypatch)


async def test_dns_rebinding_never_reaches_loopback(store: Store, internet: FakeInternet) -> None:
    """The name resolves public once, then to 127.0.0.1: the first attempt connects only to the public
    address it resolved (no second lookup), the next is refused by the resolver; the local server sees nothing."""
    resolver = Answers({"rebind.test": [PUBLIC, "127.0.0.1"]})
    client = GuardedClient(resolver=resolver)
    try:
        async with hostile(read_head) as server:
            port = server.port
            row = await deliver(store, client, f"http://rebind.test:{port}/hook", tenant=True, attempts=3)
            assert server.connections == 0
    finally:
        await client.close()
    assert internet.connects == [(PUBLIC, port)]
    assert resolver.calls == ["rebind.test"] * 2
    assert row.status == "failed" and row.last_error is not None and row.last_error.startswith("blocked")


async def test_the_operator_url_is_not_guarded(store: Store, internet: FakeInternet) -> None:
    """The same name as the operator's own WEBHOOK_URL is trusted: it does reach 127.0.0.1 (the control)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    client = GuardedClient(resolver=Answers({"rebind.test": ["127.0.0.1"]}))
    try:
        async with hostile(script) as server:
            row = await deliver(store, client, f"http://rebind.test:{server.port}/hook", tenant=False)
            assert server.connections == 1
    finally:
        await client.close()
    assert row.status == "delivered"


@pytest.mark.parametrize("url", ["http://exa mple.com:99999/hook", "ftp://example.com/hook", "http:///no-host"])
async def test_a_url_that_cannot_be_requested_fails_at_once(store: Store, client: GuardedClient, url: str) -> None:
    """A stored URL no request can be made to (set before today's checks, or edited in the database) is
    failed on its first attempt with the reason, not retried WEBHOOK_MAX_ATTEMPTS times."""
    row = await deliver(store, client, url, tenant=True, attempts=1)
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("invalid URL"), row.last_error
