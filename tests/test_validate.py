"""POST /validate/phone and DELETE /cache end to end through the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.drivers.base import PhoneCheck
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway

ON = "60171222333"
OFF = "60171222330"  # the sandbox: a number ending in 0 is not on WhatsApp


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def validate(gw: Gateway, phone: Any, token: Any = TOKEN) -> httpx.Response:
    return await gw.post("/validate/phone", {"token": token, "phone": phone})


async def test_answers_are_cached_negative_and_positive(gw: Gateway) -> None:
    """Each number is fresh once, then cached; a number ending in 0 is not on WhatsApp."""
    await gw.pair()
    first = (await validate(gw, "017-122 2330")).json()["data"]
    assert first == {"phone": OFF, "isOnWhatsApp": False, "jid": None, "verifiedName": None, "cached": False}
    again = (await validate(gw, OFF)).json()["data"]
    assert again == {**first, "cached": True}
    yes = (await validate(gw, "+60 17-122 2333")).json()["data"]
    assert yes == {
        "phone": ON,
        "isOnWhatsApp": True,
        "jid": f"{ON}@s.whatsapp.net",
        "verifiedName": None,
        "cached": False,
    }
    assert (await validate(gw, ON)).json()["data"]["cached"] is True


async def test_clearing_the_cache_reports_the_count(gw: Gateway) -> None:
    """DELETE /cache → cleared: n; the next check is fresh again."""
    await gw.pair()
    await validate(gw, ON)
    await validate(gw, OFF)
    r = await gw.http.delete("/cache")
    assert r.status_code == 200 and r.json()["data"] == {"cleared": 2}
    assert (await validate(gw, ON)).json()["data"]["cached"] is False
    assert (await gw.http.delete("/cache")).json()["data"] == {"cleared": 1}


async def test_a_cached_answer_needs_no_connected_device(gw: Gateway) -> None:
    """After a disconnect a cached number still answers; an uncached one is DEVICE_NOT_CONNECTED."""
    await gw.pair()
    await validate(gw, ON)
    await gw.post(f"/devices/{TOKEN}/disconnect")
    r = await validate(gw, ON)
    assert r.status_code == 200 and r.json()["data"]["cached"] is True
    assert error(await validate(gw, "60127654321")) == (500, "DEVICE_NOT_CONNECTED")


async def test_concurrent_checks_of_one_number_make_one_driver_call(gw: Gateway) -> None:
    """Twenty simultaneous checks of one number reach the driver once."""
    await gw.pair()
    driver = gw.rt.devices.get(TOKEN).driver
    calls: list[list[str]] = []
    gate = asyncio.Event()
    real = driver.is_on_whatsapp

    async def slow(phones: list[str]) -> list[PhoneCheck]:
        calls.append(phones)
        await gate.wait()
        result: list[PhoneCheck] = await real(phones)
        return result

    driver.is_on_whatsapp = slow
    tasks = [asyncio.create_task(validate(gw, ON)) for _ in range(20)]
    await gw.until(lambda: calls)
    gate.set()
    answers = await asyncio.gather(*tasks)
    assert calls == [[ON]]
    assert {r.json()["data"]["isOnWhatsApp"] for r in answers} == {True}


async def test_driver_failure_is_validation_failed_and_not_cached(gw: Gateway) -> None:
    """A failing on-WhatsApp check answers VALIDATION_FAILED; the next request asks again."""
    from gateway.drivers.base import CheckError

    await gw.pair()
    driver = gw.rt.devices.get(TOKEN).driver
    real = driver.is_on_whatsapp

    async def broken(phones: list[str]) -> list[PhoneCheck]:
        raise CheckError("usync timed out")

    driver.is_on_whatsapp = broken
    r = await validate(gw, ON)
    assert error(r) == (500, "VALIDATION_FAILED")
    driver.is_on_whatsapp = real
    assert (await validate(gw, ON)).json()["data"]["cached"] is False


async def test_every_bad_input_gets_the_first_failing_check(gw: Gateway) -> None:
    """Bad bodies, tokens, phones and devices answer the contract's codes in the §2 order."""
    await gw.pair()
    await gw.post("/devices", {"token": OTHER})  # exists, not connected
    table: list[tuple[str, Any, tuple[int, str]]] = [
        ("no body", None, (400, "INVALID_REQUEST")),
        ("not JSON", b"[1,", (400, "INVALID_REQUEST")),
        ("array body", [TOKEN, ON], (400, "INVALID_REQUEST")),
        ("phone a number", {"token": TOKEN, "phone": 60171222333}, (400, "INVALID_REQUEST")),
        ("token a list", {"token": [TOKEN], "phone": ON}, (400, "INVALID_REQUEST")),
        ("missing token", {"phone": ON}, (400, "MISSING_TOKEN")),
        ("empty token", {"token": "", "phone": "bad"}, (400, "MISSING_TOKEN")),
        ("bad token", {"token": "123", "phone": ON}, (400, "INVALID_PHONE")),
        ("missing phone", {"token": TOKEN}, (400, "INVALID_PHONE")),
        ("bad phone", {"token": TOKEN, "phone": "60111111111"}, (400, "INVALID_PHONE")),
        ("phone before device", {"token": "60127654321", "phone": "x"}, (400, "INVALID_PHONE")),
        ("unknown device", {"token": "60127654321", "phone": ON}, (404, "DEVICE_NOT_FOUND")),
        ("disconnected device", {"token": OTHER, "phone": ON}, (500, "DEVICE_NOT_CONNECTED")),
    ]
    for case, body, expected in table:
        if isinstance(body, bytes):
            r = await gw.http.post("/validate/phone", content=body)
        elif body is None:
            r = await gw.http.post("/validate/phone")
        else:
            r = await gw.post("/validate/phone", body)
        assert error(r) == expected, (case, r.text)


async def test_unknown_device_is_not_found_even_when_cached(gw: Gateway) -> None:
    """A cached number does not let an unknown token through: DEVICE_NOT_FOUND."""
    await gw.pair()
    await validate(gw, ON)
    assert error(await validate(gw, ON, "60127654321")) == (404, "DEVICE_NOT_FOUND")
