"""Phone rules (CONTRACT §3): normalization, validity, JIDs."""

from __future__ import annotations

import pytest

from gateway.phones import InvalidPhone, mask, normalize, to_jid

GOOD = [
    # Malaysia: mobile and landline, with every separator, local and international
    ("60123456789", "60123456789"),
    ("+60 12-345 6789", "60123456789"),
    ("012-345 6789", "60123456789"),
    ("(012) 345.6789", "60123456789"),
    ("  +60123456789\t", "60123456789"),
    ("03-2161 2345", "60321612345"),
    # Singapore, Indonesia
    ("+65 9123 4567", "6591234567"),
    ("6591234567", "6591234567"),
    ("+62 812-3456-7890", "6281234567890"),
    # US (incl. toll-free), UK (London landline and mobile)
    ("+1 (650) 253-0000", "16502530000"),
    ("1-800-555-0199", "18005550199"),
    ("+44 20 7946 0958", "442079460958"),
    ("+44 7911 123456", "447911123456"),
    # India, Brazil (São Paulo mobile, 9 digits), Australia, Germany, Japan, China
    ("+91 98765 43210", "919876543210"),
    ("+55 11 91234-5678", "5511912345678"),
    ("+61 412 345 678", "61412345678"),
    ("+49 30 901820", "4930901820"),
    ("+81 90-1234-5678", "819012345678"),
    ("+86 138 0013 8000", "8613800138000"),
]

BAD = [
    "",
    "   ",
    "abc",
    "12345",  # too short
    "60111111111",  # made-up: not a valid MY number
    "+0123",
    "+++60123456789",
    "60+123456789",  # a plus inside
    "60 12 345 6789 0",  # one digit too many
    "1234567890123456",  # over 15 digits
    "٠١٢٣٤٥٦٧٨٩",  # Arabic-Indic digits are not ASCII digits
    "６０１２３４５６７８９",  # full-width digits
    "+44 20 7946 095",  # UK number one digit short
    "60123456789@s.whatsapp.net",  # a JID is not a phone
    "#60123456789",
]


@pytest.mark.parametrize(("raw", "digits"), GOOD)
def test_normalize_accepts_real_numbers(raw: str, digits: str) -> None:
    """Separators and `+` go, a leading 0 takes the country code, the digits are canonical."""
    assert normalize(raw) == digits


@pytest.mark.parametrize("raw", BAD)
def test_normalize_rejects_what_phonenumbers_rejects(raw: str) -> None:
    """Anything that is not a valid number after the rules is InvalidPhone."""
    with pytest.raises(InvalidPhone):
        normalize(raw)


def test_normalize_rejects_non_strings() -> None:
    """A number or None is not a phone string."""
    for value in (60123456789, None, ["60123456789"]):
        with pytest.raises(InvalidPhone):
            normalize(value)  # type: ignore[arg-type]


def test_leading_zero_uses_the_configured_country_code() -> None:
    """DEFAULT_COUNTRY_CODE decides what a leading 0 becomes."""
    assert normalize("0912 345 6789", "63") == "639123456789"  # Philippines
    assert normalize("07911 123456", "44") == "447911123456"  # UK mobile
    with pytest.raises(InvalidPhone):
        normalize("07911 123456", "60")  # not a Malaysian number


@pytest.mark.parametrize(
    ("raw", "jid"),
    [
        ("012-345 6789", "60123456789@s.whatsapp.net"),
        ("+65 9123 4567", "6591234567@s.whatsapp.net"),
        ("60123456789@s.whatsapp.net", "60123456789@s.whatsapp.net"),
        ("60123456789@S.WhatsApp.net", "60123456789@s.whatsapp.net"),
        ("120363000000000001@g.us", "120363000000000001@g.us"),
        ("60123456789-1612345678@g.us", "60123456789-1612345678@g.us"),
        (" 120363000000000001@G.US ", "120363000000000001@g.us"),
    ],
)
def test_to_jid_accepts_phones_and_jids(raw: str, jid: str) -> None:
    """`to` may be a phone (normalized) or a user/group JID."""
    assert to_jid(raw) == jid


@pytest.mark.parametrize(
    "raw",
    [
        "60111111111@s.whatsapp.net",  # user part is not a valid number
        "60123456789@lid",
        "abc@g.us",
        "60123456789@s.whatsapp.net.evil",
        "@g.us",
        "60123456789@",
        "60111111111",
    ],
)
def test_to_jid_rejects_bad_recipients(raw: str) -> None:
    """Unknown JID servers and invalid user parts are InvalidPhone."""
    with pytest.raises(InvalidPhone):
        to_jid(raw)


def test_mask_hides_the_middle() -> None:
    """Only the first four and last three digits stay visible."""
    assert mask("60123456789") == "6012****789"
    assert mask(None) is None


def _verdict(fn: object, digits: str) -> str | None:
    try:
        return fn(digits)  # type: ignore[operator,no-any-return]
    except InvalidPhone:
        return None


def test_the_bulk_path_gives_phonenumbers_answer_for_every_country_code() -> None:
    """normalize_bulk (a campaign's 100,000 numbers, on precompiled patterns) says exactly what normalize
    (phonenumbers.parse + is_valid_number) says: for each country code, its example numbers of every type,
    each with its last digit changed, one digit more and one less, and random digits of every length."""
    import random

    import phonenumbers

    from gateway.phones.rules import _region_rules, _valid_digits, normalize_bulk

    rng = random.Random(16)
    candidates: list[str] = []
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            for kind in range(12):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None:
                    continue
                nsn = phonenumbers.national_significant_number(example)
                candidates += [f"{code}{nsn}", f"{code}{nsn[:-1]}{(int(nsn[-1]) + 3) % 10}"]
                candidates += [f"{code}{nsn}7", f"{code}{nsn[:-1]}"]
        for length in range(4, 14):
            candidates += [f"{code}{rng.randint(1, 9)}{rng.randbytes(length).hex()[: length - 1]}".replace("a", "1")
                           for _ in range(3)]  # fmt: skip
    digits = [c for c in (c.translate(str.maketrans("abcdef", "234567")) for c in candidates) if len(c) <= 15]
    assert len(digits) > 10_000
    _valid_digits.cache_clear()
    differ = [d for d in digits if _verdict(normalize_bulk, d) != _verdict(normalize, d)]
    assert differ == []
    # The precompiled test itself (not only with the slow way behind its "no"): phonenumbers'
    # is_valid_number on the same country code and national number, wherever it is used.
    fast = slow = 0
    for d in digits:
        k = next((k for k in (1, 2, 3) if int(d[:k]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE), None)
        rules = _region_rules(int(d[:k])) if k is not None else None
        if rules is None or d[k:].startswith("0"):
            slow += 1
            continue
        fast += 1
        number = phonenumbers.PhoneNumber(country_code=int(d[:k]), national_number=int(d[k:]))
        assert rules.valid(d[k:]) == phonenumbers.is_valid_number(number), d
    assert fast > 3 * slow  # most country codes have one region
    valid = sum(_valid_digits.__wrapped__(d) for d in digits)
    assert 0.2 < valid / len(digits) < 0.8  # the sample holds both answers in number
