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
