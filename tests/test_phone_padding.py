"""Issue 13 §1 and §11: phone input is capped before it is stripped or remembered, and the
validation cache's ``cached`` flag does not leak what another account looked up."""

from __future__ import annotations

import ctypes
import gc
import json
from pathlib import Path

import pytest
import websockets

from gateway.phones import MAX_RAW_LENGTH, InvalidPhone, normalize, to_jid
from tests.support.accounts import Tenants
from tests.support.constants import TOKEN
from tests.support.gateway import Gateway

PAD = 900_000  # ~0.9 MiB of spaces: under the 1 MiB body limit


def padded(i: int, size: int = PAD) -> str:
    """A valid number once its separators are stripped, padded to ``size``+ characters (unique per ``i``)."""
    return "60" + " " * (size + i) + "123456789"


def rss_bytes() -> int:
    """This process's resident set (the live gateway runs in it), after a collection and after handing
    free heap pages back to the OS: what is left is what something still holds, not allocator slack."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_input_over_the_cap_is_refused_before_stripping() -> None:
    """64 characters with padding still normalise; 65 do not, and the message does not echo the input."""
    at_cap = "60123456789".center(MAX_RAW_LENGTH)
    assert len(at_cap) == MAX_RAW_LENGTH and normalize(at_cap) == "60123456789"
    with pytest.raises(InvalidPhone) as exc:
        normalize(at_cap + " ")
    assert "too long" in str(exc.value)
    with pytest.raises(InvalidPhone) as exc:
        normalize(padded(0))
    assert len(str(exc.value)) < 200
    with pytest.raises(InvalidPhone):
        to_jid("6012345678" + " " * 100 + "9@s.whatsapp.net")


@pytest.mark.live
async def test_padded_numbers_leave_memory_flat(gw: Gateway) -> None:
    """100 padded numbers (~0.9 MiB each) over HTTP as token and phone, and 100 padded WebSocket
    get_state tokens, are refused as INVALID_PHONE and leave the resident set within a few MiB
    (before the cap the normalisation memo kept every one: ~90 MiB)."""
    ws = await gw.ws()
    answers: set[tuple[int, str]] = set()
    frames: set[str] = set()

    async def round_of(start: int, n: int) -> None:
        for i in range(start, start + n):
            r = await gw.post("/validate/phone", {"token": padded(i), "phone": TOKEN})
            answers.add((r.status_code, r.json()["error"]["code"]))
            at = len(ws.frames)
            await ws.send("get_state", {"token": padded(i, 60_000)})  # under the 64 KiB frame limit
            frames.add((await ws.wait(lambda f: f["event"] in ("error", "session_state"), start=at))["event"])

    await round_of(0, 20)  # warm-up: buffers and allocator arenas reach their working size
    before = rss_bytes()
    await round_of(20, 100)
    grown = rss_bytes() - before
    print(f"RSS grew by {grown / 2**20:.1f} MiB over 100 padded HTTP requests + 100 padded frames")
    assert grown < 8 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"
    assert answers == {(400, "INVALID_PHONE")}
    assert frames == {"error"}


@pytest.mark.live
async def test_websocket_subscribe_tokens_are_capped_too(gw: Gateway) -> None:
    """A padded token in subscribe (frame or ?tokens=) is not normalised into the subscription."""
    ws = await gw.ws()
    await ws.send("subscribe", {"tokens": ["6012" + " " * 100 + "3456789"]})
    frame = await ws.wait(lambda f: f["event"] in ("subscribed", "error"), start=1)
    assert frame["event"] == "subscribed" and "60123456789" not in (frame["data"]["tokens"] or [])
    url = f"ws://127.0.0.1:{gw.settings.port}/ws?apiKey={gw.settings.api_key}&tokens=60123456789"
    async with websockets.connect(url) as raw:
        hello = json.loads(await raw.recv())
        assert hello["event"] == "connected"


async def test_cached_flag_is_per_account(gw: Gateway) -> None:
    """Tenant A's lookup is served to tenant B from the shared cache, but flagged cached:false for B
    (and for the admin) the first time each asks; each then sees cached:true for its own repeat."""
    tenants = Tenants(gw)
    try:
        alice = await tenants.signup("alice")
        bob = await tenants.signup("bob")
        for tenant, token in ((alice, "60123456789"), (bob, "60198765432")):
            assert (await tenant.http.post("/devices", json={"token": token})).status_code == 200
            assert (await gw.post(f"/sandbox/devices/{token}/scan")).status_code == 200
        number = "60171222333"

        async def ask(tenant_http: object, token: str) -> bool:
            r = await tenant_http.post("/validate/phone", json={"token": token, "phone": number})  # type: ignore[attr-defined]
            assert r.status_code == 200, r.text
            cached: bool = r.json()["data"]["cached"]
            return cached

        calls: list[list[str]] = []
        device = gw.rt.devices.get("60198765432")
        real = device.check_phones

        async def counting(phones: list[str]) -> object:
            calls.append(phones)
            return await real(phones)

        device.check_phones = counting
        assert await ask(alice.http, "60123456789") is False
        assert await ask(alice.http, "60123456789") is True
        assert await ask(bob.http, "60198765432") is False  # alice's lookup is not bob's to know
        assert calls == []  # … yet it was served from the shared cache, with no WhatsApp call
        assert await ask(bob.http, "60198765432") is True
        assert await ask(gw.http, "60198765432") is False
    finally:
        await tenants.aclose()
