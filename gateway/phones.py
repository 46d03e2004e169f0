"""Phone rules (CONTRACT §3) in one place, and the on-WhatsApp answer cache.

``normalize("+60 12-345 6789") == "60123456789"``; a leading ``0`` becomes the
default country code; the digits must be a number ``phonenumbers`` calls valid.
"""

from __future__ import annotations

import re

import phonenumbers

_SEPARATORS = re.compile(r"[\s\-.()]")
_JID = re.compile(r"^([0-9]{5,20})@s\.whatsapp\.net$|^([0-9]{5,20}(?:-[0-9]{5,20})?)@g\.us$")


class InvalidPhone(ValueError):
    """The input is not a valid phone number."""


def normalize(raw: str, default_country_code: str = "60") -> str:
    """Canonical digits of ``raw`` or :class:`InvalidPhone`."""
    if not isinstance(raw, str):
        raise InvalidPhone("phone must be a string")
    digits = _SEPARATORS.sub("", raw.strip())
    digits = digits.removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        raise InvalidPhone(f"{raw!r} is not a phone number")
    if digits.startswith("0"):
        digits = default_country_code + digits[1:]
    if not 7 <= len(digits) <= 15:
        raise InvalidPhone(f"{raw!r} is not a valid phone number")
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a valid phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(f"{raw!r} is not a valid phone number")
    return digits


def to_jid(raw: str, default_country_code: str = "60") -> str:
    """A recipient as a JID: phone digits become ``<digits>@s.whatsapp.net``;
    a user or group JID is kept (its user part checked)."""
    if isinstance(raw, str) and "@" in raw:
        m = _JID.match(raw.strip())
        if not m:
            raise InvalidPhone(f"{raw!r} is not a WhatsApp JID")
        if m.group(1):
            return normalize(m.group(1), default_country_code) + "@s.whatsapp.net"
        return raw.strip()
    return normalize(raw, default_country_code) + "@s.whatsapp.net"


def mask(phone: str | None) -> str | None:
    """``60123456789`` → ``6012****789`` for display."""
    if not phone:
        return None
    if len(phone) <= 7:
        return phone[:2] + "*" * (len(phone) - 2)
    return phone[:4] + "*" * (len(phone) - 7) + phone[-3:]
