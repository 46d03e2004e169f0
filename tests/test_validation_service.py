"""``gateway.validation``: the device's answer matched to the number asked, behind the phone cache."""

from __future__ import annotations

from typing import Any, cast

import pytest

from gateway.api.errors import ApiError
from gateway.devices import Device
from gateway.drivers.base import PhoneCheck
from gateway.phones import PhoneCache
from gateway.validation import answer_for, validate

NUMBER = "60198765432"


def test_the_answer_naming_the_number_wins() -> None:
    other = PhoneCheck("60171222333", False, None)
    mine = PhoneCheck(NUMBER, True, f"{NUMBER}@s.whatsapp.net")
    assert answer_for(NUMBER, [other, mine]) is mine


def test_a_single_answer_in_another_form_still_counts() -> None:
    echoed = PhoneCheck("+60 19-876 5432", True, f"{NUMBER}@s.whatsapp.net")
    assert answer_for(NUMBER, [echoed]) is echoed


def test_no_answer_or_several_unrelated_answers_is_none() -> None:
    assert answer_for(NUMBER, []) is None
    assert answer_for(NUMBER, [PhoneCheck("1", True, None), PhoneCheck("2", False, None)]) is None


class FakeDevice:
    def __init__(self, results: list[PhoneCheck]) -> None:
        self.results = results
        self.calls: list[list[str]] = []

    async def check_phones(self, phones: list[str]) -> list[PhoneCheck]:
        self.calls.append(phones)
        return self.results


async def test_validate_caches_the_matched_answer() -> None:
    cache = PhoneCache(ttl_s=60, maxsize=10)
    device = FakeDevice([PhoneCheck(NUMBER, True, f"{NUMBER}@s.whatsapp.net", "Shop")])
    answer, cached = await validate(cache, cast(Device, device), NUMBER)
    assert (answer.phone, answer.is_on_whatsapp, answer.verified_name, cached) == (NUMBER, True, "Shop", False)
    again, cached = await validate(cache, cast(Device, device), NUMBER)
    assert again == answer and cached is True and device.calls == [[NUMBER]]


async def test_no_answer_is_validation_failed_and_not_cached() -> None:
    cache = PhoneCache(ttl_s=60, maxsize=10)
    device: Any = FakeDevice([])
    with pytest.raises(ApiError) as err:
        await validate(cache, device, NUMBER)
    assert err.value.code == "VALIDATION_FAILED"
    device.results = [PhoneCheck(NUMBER, False, None)]
    answer, cached = await validate(cache, device, NUMBER)
    assert answer.is_on_whatsapp is False and cached is False
