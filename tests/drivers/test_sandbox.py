"""The sandbox driver's simulated WhatsApp (CONTRACT §9), on its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from functools import partial
from operator import contains
from pathlib import Path

import pytest

from gateway.drivers.base import (
    Connected,
    ConnectError,
    Disconnected,
    DriverEvent,
    DriverOptions,
    LoggedOut,
    PairingCode,
    Qr,
    Receipt,
)
from gateway.drivers.sandbox import SandboxDriver, SandboxStateError
from tests.support.poll import until

TOKEN = "60123456789"


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxDriver]:
    d = SandboxDriver(
        TOKEN,
        DriverOptions(
            data_dir=tmp_path, sandbox_qr_interval_ms=50, sandbox_receipt_delay_ms=10, sandbox_reconnect_ms=200
        ),
    )
    yield d
    await d.close()


async def next_of(d: SandboxDriver, kind: type, timeout: float = 2.0) -> DriverEvent:
    async with asyncio.timeout(timeout):
        async for ev in d.events():
            if isinstance(ev, kind):
                return ev
    raise AssertionError("stream ended")


async def test_qr_codes_rotate(sandbox: SandboxDriver) -> None:
    """connect(qr) emits a `2@` QR at once and a different one each interval."""
    await sandbox.connect("qr")
    first = await next_of(sandbox, Qr)
    second = await next_of(sandbox, Qr)
    assert isinstance(first, Qr) and isinstance(second, Qr)
    assert first.code.startswith("2@") and second.code.startswith("2@") and first.code != second.code


async def test_pairing_code_shape(sandbox: SandboxDriver) -> None:
    """connect(code) emits XXXX-XXXX of A–Z and 0–9."""
    await sandbox.connect("code")
    ev = await next_of(sandbox, PairingCode)
    assert isinstance(ev, PairingCode) and re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", ev.code)


async def test_scan_pairs_and_pairing_is_kept_in_the_session_file(sandbox: SandboxDriver, tmp_path: Path) -> None:
    """scan → Connected; a new driver on the same file is paired and connects without a scan."""
    with pytest.raises(SandboxStateError):
        sandbox.scan()
    await sandbox.connect("qr")
    sandbox.scan()
    assert isinstance(await next_of(sandbox, Connected), Connected)
    again = SandboxDriver(TOKEN, DriverOptions(data_dir=tmp_path))
    assert again.is_paired()
    await again.connect("qr")
    assert isinstance(await next_of(again, Connected), Connected)
    await again.close()


async def test_send_ids_and_receipts(sandbox: SandboxDriver) -> None:
    """Sent ids are 3EB0 + 16 upper hex; delivered then read receipts follow; sent() keeps order."""
    await sandbox.connect("qr")
    sandbox.scan()
    jid = "60198765432@s.whatsapp.net"
    sent = [await sandbox.send_text(jid, f"m{i}") for i in range(3)]
    assert all(re.fullmatch(r"3EB0[0-9A-F]{16}", s.id) for s in sent)
    assert [m["text"] for m in sandbox.sent()] == ["m0", "m1", "m2"]
    kinds: list[str] = []
    async with asyncio.timeout(2):
        async for ev in sandbox.events():
            if isinstance(ev, Receipt) and sent[0].id in ev.message_ids:
                kinds.append(ev.type)
                if len(kinds) == 2:
                    break
    assert kinds == ["delivered", "read"]


async def test_every_send_gets_one_delivered_then_one_read_no_earlier_than_due(sandbox: SandboxDriver) -> None:
    """A burst of sends (one timer serves them all): each id gets exactly one delivered receipt no earlier
    than SANDBOX_RECEIPT_DELAY_MS after its send and one read no earlier than twice that, in send order."""
    await sandbox.connect("qr")
    sandbox.scan()
    loop = asyncio.get_running_loop()
    jid = "60198765432@s.whatsapp.net"
    sent_at: dict[str, float] = {}
    ids: list[str] = []
    seen: dict[str, list[str]] = {"delivered": [], "read": []}
    arrived = asyncio.Condition()

    async def consume() -> None:
        async for ev in sandbox.events():
            if isinstance(ev, Receipt):
                for msg_id in ev.message_ids:  # receipts due together come as one (WhatsApp batches them)
                    due = sent_at[msg_id] + (0.010 if ev.type == "delivered" else 0.020)
                    assert loop.time() >= due - 0.001, f"{ev.type} of {msg_id} came early"
                    assert ev.type == "delivered" or msg_id in seen["delivered"], "read before delivered"
                    seen[ev.type].append(msg_id)
                async with arrived:
                    arrived.notify_all()
                if len(seen["read"]) == 40:
                    return

    consumer = asyncio.create_task(consume())
    for batch in range(4):
        for i in range(10):
            sent = await sandbox.send_text(jid, f"m{batch}-{i}")
            sent_at[sent.id] = loop.time()
            ids.append(sent.id)
        # The next batch goes out once this one's first receipt came: due times spread over several
        # firings of the one timer, with receipts of both kinds still queued behind it.
        first = ids[batch * 10]
        async with asyncio.timeout(5), arrived:
            await arrived.wait_for(partial(contains, seen["delivered"], first))
    async with asyncio.timeout(5):
        await consumer
    assert seen["delivered"] == ids and seen["read"] == ids


async def test_receipts_due_together_come_as_one_event_per_chat_and_kind(sandbox: SandboxDriver) -> None:
    """A burst of 20 sends to one chat is told in a few receipts with many ids each (as WhatsApp
    batches them), every id exactly once per kind, delivered before read."""
    await sandbox.connect("qr")
    sandbox.scan()
    jid = "60198765432@s.whatsapp.net"
    ids = [(await sandbox.send_text(jid, f"b{i}")).id for i in range(20)]
    events: list[Receipt] = []
    async with asyncio.timeout(5):
        async for ev in sandbox.events():
            if isinstance(ev, Receipt):
                events.append(ev)
                if sum(len(e.message_ids) for e in events if e.type == "read") == 20:
                    break
    delivered = [i for e in events if e.type == "delivered" for i in e.message_ids]
    read = [i for e in events if e.type == "read" for i in e.message_ids]
    assert delivered == ids and read == ids
    assert all(e.sender == jid for e in events)
    assert len(events) < 10, f"{len(events)} receipt events for 20 sends: not batched"


async def test_due_receipts_of_both_kinds_come_as_one_event_per_kind_and_chat(
    sandbox: SandboxDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the due times of delivered (for later sends) and read (for earlier ones) interleave:
    still one event per kind and chat, every due delivered before any due read — not an event per id."""
    await sandbox.connect("qr")
    sandbox.scan()
    emitted: list[object] = []
    monkeypatch.setattr(sandbox._stream, "emit", emitted.append)
    now = asyncio.get_running_loop().time()
    a, b = "60111111111@s.whatsapp.net", "60122222222@s.whatsapp.net"
    for i in range(6):
        sandbox._delivered.append((now - 1 + i * 0.01, f"D{i}", a if i % 2 else b))
        sandbox._read.append((now - 1 + i * 0.01 + 0.005, f"R{i}", a if i % 2 else b))
    sandbox._read.append((now + 60, "LATER", a))  # not due: stays queued
    sandbox._emit_due_receipts()
    got = [(e.type, e.sender, e.message_ids) for e in emitted if isinstance(e, Receipt)]
    assert got == [
        ("delivered", b, ("D0", "D2", "D4")),
        ("delivered", a, ("D1", "D3", "D5")),
        ("read", b, ("R0", "R2", "R4")),
        ("read", a, ("R1", "R3", "R5")),
    ]
    assert [r[1] for r in sandbox._read] == ["LATER"]


async def test_a_drop_cancels_pending_receipts(sandbox: SandboxDriver) -> None:
    """Receipts not yet due when the connection drops never come."""
    opts = DriverOptions(data_dir=sandbox.session_path.parent, sandbox_receipt_delay_ms=60_000)
    slow = SandboxDriver("60123456780", opts)
    await slow.connect("qr")
    slow.scan()
    assert isinstance(await next_of(slow, Connected), Connected)
    await slow.send_text("60198765432@s.whatsapp.net", "never read")
    slow.drop()
    assert isinstance(await next_of(slow, Disconnected), Disconnected)
    assert not slow._delivered and not slow._read and slow._receipt_timer is None
    await slow.close()


async def test_on_whatsapp_rule(sandbox: SandboxDriver) -> None:
    """A number is on WhatsApp unless its last digit is 0."""
    await sandbox.connect("qr")
    sandbox.scan()
    checks = await sandbox.is_on_whatsapp(["60198765432", "60198765430"])
    assert [c.is_on_whatsapp for c in checks] == [True, False]
    assert checks[0].jid == "60198765432@s.whatsapp.net" and checks[1].jid is None


async def test_drop_refuses_dials_for_a_while_then_allows(sandbox: SandboxDriver) -> None:
    """After drop the network is away briefly (ConnectError), then connect brings the device back."""
    await sandbox.connect("qr")
    sandbox.scan()
    await next_of(sandbox, Connected)
    sandbox.drop()
    assert isinstance(await next_of(sandbox, Disconnected), Disconnected)
    with pytest.raises(ConnectError):
        await sandbox.connect("qr")

    async def reconnects() -> bool:
        try:
            await sandbox.connect("qr")
        except ConnectError:
            return False
        return True

    await until(reconnects, 2, "the network is back")
    assert isinstance(await next_of(sandbox, Connected), Connected)


async def test_unlink_deletes_the_session(sandbox: SandboxDriver) -> None:
    """unlink → LoggedOut and the session file is gone."""
    await sandbox.connect("qr")
    sandbox.scan()
    assert sandbox.session_path.exists()
    sandbox.unlink()
    assert isinstance(await next_of(sandbox, LoggedOut), LoggedOut)
    assert not sandbox.session_path.exists() and not sandbox.is_paired()
