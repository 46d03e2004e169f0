"""On-WhatsApp checks of a validating campaign (``validate: true``) go through the phone cache and are
paced on the device's checks lane: never a burst, never more than ``perMinute`` a minute (shared by the
device's campaigns), while the sends keep their own full pace. On the injectable clock: no real waiting."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from gateway.campaigns.pacer import DevicePacer
from gateway.campaigns.pacing import WARMUP_SENDS
from gateway.drivers.base import OutgoingMessage, PhoneCheck, SentMessage
from gateway.drivers.sandbox import SandboxDriver
from tests.campaigns.fakes import JumpClock
from tests.campaigns.test_pacing import max_per_window
from tests.support.constants import TOKEN
from tests.support.gateway import Gateway

# 40 fresh numbers; the sandbox says a number ending in 0 is not on WhatsApp (4 of them here).
NUMBERS = [f"601234{i:05d}" for i in range(1, 41)]
ON_WHATSAPP = [n for n in NUMBERS if not n.endswith("0")]


class Recorder:
    """When (on the campaigns' clock) each check and each send reached the driver."""

    def __init__(self, clock: JumpClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.checks: list[tuple[float, str]] = []
        self.sends: list[float] = []
        check, send = SandboxDriver.is_on_whatsapp, SandboxDriver.send

        async def is_on_whatsapp(driver: SandboxDriver, phones: list[str]) -> list[PhoneCheck]:
            self.checks += [(clock.now(), p) for p in phones]
            return await check(driver, phones)

        async def sending(driver: SandboxDriver, to: str, message: OutgoingMessage) -> SentMessage:
            self.sends.append(clock.now())
            return await send(driver, to, message)

        monkeypatch.setattr(SandboxDriver, "is_on_whatsapp", is_on_whatsapp)
        monkeypatch.setattr(SandboxDriver, "send", sending)


async def on_a_jump_clock(gateway_factory: Callable[..., Any]) -> tuple[Gateway, JumpClock]:
    gw: Gateway = await gateway_factory()
    await gw.pair()
    clock = JumpClock()
    gw.rt.campaigns.clock = clock  # before any campaign: the service and its pacer read time from it
    gw.rt.campaigns.pacer = DevicePacer(clock)
    return gw, clock


async def run(gw: Gateway, numbers: list[str], **pace: Any) -> dict[str, Any]:
    body = {
        "token": TOKEN, "name": "checked", "message": {"text": "hi"}, "validate": True,
        "recipients": [{"phone": n} for n in numbers], "pace": {"perMinute": 60, "jitterPct": 30, **pace},
    }  # fmt: skip
    r = await gw.post("/campaigns", body)
    assert r.status_code == 201, r.text
    cid = r.json()["data"]["id"]

    async def finished() -> Any:
        c = (await gw.http.get(f"/campaigns/{cid}")).json()["data"]
        return c if c["status"] == "completed" else None

    done: dict[str, Any] = await gw.until(finished, timeout=20)
    return done


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(sorted(times))]


async def test_checks_are_paced_once_per_number_and_the_sends_keep_their_pace(
    gateway_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, clock = await on_a_jump_clock(gateway_factory)
    rec = Recorder(clock, monkeypatch)
    done = await run(gw, NUMBERS)
    assert (done["sent"], done["skipped"], done["failed"]) == (len(ON_WHATSAPP), 4, 0)
    # Each number asked once, one at a time, in the order given.
    assert [p for _, p in rec.checks] == NUMBERS
    times = [t for t, _ in rec.checks]
    check_gaps = gaps(times)
    # Paced: never two checks closer than the gap's lower jitter bound (1 s - 30 %), warm-up wider.
    assert min(check_gaps) >= 0.7 - 1e-9
    assert check_gaps[0] >= 3 * 0.7 - 1e-9  # warm-up: the first gap is 3x, easing down to 1x
    assert sum(check_gaps[:3]) > sum(check_gaps[-3:])
    assert max_per_window(times) <= 60
    # The sends have their own lane: as paced as ever, and not slowed to half by the checks.
    send_gaps = gaps(rec.sends)
    assert min(send_gaps) >= 0.7 - 1e-9 and max_per_window(rec.sends) <= 60
    steady = send_gaps[WARMUP_SENDS:]
    assert sum(steady) / len(steady) <= 1.6  # one send a second ± jitter (a skipped number leaves a gap)

    # The same numbers again: every answer is in the phone cache, so no check at all.
    asked = len(rec.checks)
    again = await run(gw, NUMBERS)
    assert (again["sent"], again["skipped"]) == (len(ON_WHATSAPP), 4)
    assert len(rec.checks) == asked


async def test_the_campaigns_of_a_device_share_its_checks_pace(
    gateway_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two validating campaigns of 30/min on one device: 30 checks a minute between them, never 60."""
    gw, clock = await on_a_jump_clock(gateway_factory)
    rec = Recorder(clock, monkeypatch)
    first, second = NUMBERS[:20], NUMBERS[20:]
    body = {"token": TOKEN, "name": "x", "message": {"text": "hi"}, "pace": {"perMinute": 30}}
    ids = []
    for numbers in (first, second):
        r = await gw.post("/campaigns", {**body, "recipients": [{"phone": n} for n in numbers]})
        assert r.status_code == 201, r.text
        ids.append(r.json()["data"]["id"])

    async def both_done() -> bool:
        views = [(await gw.http.get(f"/campaigns/{cid}")).json()["data"] for cid in ids]
        return all(v["status"] == "completed" for v in views)

    await gw.until(both_done, timeout=20)
    times = [t for t, _ in rec.checks]
    assert sorted(p for _, p in rec.checks) == NUMBERS
    assert {p for _, p in rec.checks[:4]} & set(first) and {p for _, p in rec.checks[:4]} & set(second)
    assert max_per_window(times) <= 30
    assert min(gaps(times)) >= 2.0 * 0.7 - 1e-9  # 60/30 s ± 30 %
