"""Webhook deliveries through the real guarded client (no fake at the seam): what counts as delivered
when the receiver misbehaves, and DNS rebinding never reaching 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp.connector
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.net import GuardedClient
from gateway.settings import Settings
from gateway.store import NewDelivery, Store
from gateway.store.outbox import OutboxRow
from gateway.webhooks.dispatcher import Dispatcher
from tests.support.hostile import hostile, read_head

PUBLIC = "93.184.216.34"


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


class Rebinding(AbstractResolver):
    """A DNS server under an attacker's control: a public address first, 127.0.0.1 ever after."""

    def __init__(self) -> None:
        self.calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        ip = PUBLIC if self.calls == 1 else "127.0.0.1"
        return [{"hostname": host, "host": ip, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the client connects to; the public one refuses (no packet leaves the machine),
    loopback connects for real (so a local server would see it)."""
    seen: list[tuple[str, int]] = []
    real = aiohttp.connector.aiohappyeyeballs.start_connection

    async def start_connection(addr_infos: Any, **kw: Any) -> socket.socket:
        for info in addr_infos:
            seen.append((info[4][0], info[4][1]))
        if any(info[4][0] != "127.0.0.1" for info in addr_infos):
            raise ConnectionRefusedError(111, "refused (test: no network)")
        sock: socket.socket = await real(addr_infos, **kw)
        return sock

    monkeypatch.setattr(aiohttp.connector.aiohappyeyeballs, "start_connection", start_connection)
    return seen


async def test_dns_rebinding_never_reaches_loopback(store: Store, connects: list[tuple[str, int]]) -> None:
    """The name resolves public once, then to 127.0.0.1: the first attempt connects only to the public
    address it resolved (no second lookup), the next is refused by the resolver; the local server sees nothing."""
    resolver = Rebinding()
    client = GuardedClient(resolver=resolver)
    try:
        async with hostile(read_head) as server:
            port = server.port
            row = await deliver(store, client, f"http://rebind.test:{port}/hook", tenant=True, attempts=3)
            assert server.connections == 0
    finally:
        await client.close()
    assert connects == [(PUBLIC, port)]
    assert resolver.calls == 2
    assert row.status == "failed" and row.last_error is not None and row.last_error.startswith("blocked")


async def test_the_operator_url_is_not_guarded(store: Store, connects: list[tuple[str, int]]) -> None:
    """The same name as the operator's own WEBHOOK_URL is trusted: it does reach 127.0.0.1 (the control)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    resolver = Rebinding()
    resolver.calls = 1  # already past the public answer
    client = GuardedClient(resolver=resolver)
    try:
        async with hostile(script) as server:
            row = await deliver(store, client, f"http://rebind.test:{server.port}/hook", tenant=False)
            assert server.connections == 1
    finally:
        await client.close()
    assert row.status == "delivered"
