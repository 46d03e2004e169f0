"""Phone rules (CONTRACT §3) in one place.

``normalize("+60 12-345 6789") == "60123456789"``; a leading ``0`` becomes the
default country code; the digits must be a number ``phonenumbers`` calls valid.

Input longer than :data:`MAX_RAW_LENGTH` is refused before any work: a number
padded with a megabyte of spaces would otherwise be stripped (O(n)) and, worse,
remembered whole by a memo keyed on the raw text. The memos here are keyed on
the short, separator-free text, so what they hold is bounded by their size.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

# The longest sensible spelling of a phone number ("+60 (12) 345-6789" and friends, or a
# group JID) is far below this; anything longer is refused before it is even stripped.
MAX_RAW_LENGTH = 64

_SEPARATORS = re.compile(r"[\s\-.()]")
_JID = re.compile(r"^([0-9]{5,20})@s\.whatsapp\.net$|^([0-9]{5,20}(?:-[0-9]{5,20})?)@g\.us$", re.IGNORECASE)


class InvalidPhone(ValueError):
    """The input is not a valid phone number."""


def _shown(raw: str) -> str:
    """``raw`` for an error message: never more than the cap (the message is echoed to the caller)."""
    return repr(raw) if len(raw) <= MAX_RAW_LENGTH else f"a value of {len(raw)} characters"


def normalize(raw: str, default_country_code: str = "60") -> str:
    """Canonical digits of ``raw`` or :class:`InvalidPhone`."""
    if not isinstance(raw, str):
        raise InvalidPhone("phone must be a string")
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidPhone(f"{_shown(raw)} is too long for a phone number (at most {MAX_RAW_LENGTH} characters)")
    # Most callers send bare digits: skip the substitution for them.
    digits = raw if raw.isdigit() else _SEPARATORS.sub("", raw).removeprefix("+")
    try:
        return _canonical(digits, default_country_code)
    except InvalidPhone as exc:
        raise InvalidPhone(f"{raw!r} {exc}") from None


@functools.lru_cache(maxsize=16384)  # a send normalizes its token and its recipient: both repeat
def _canonical(digits: str, default_country_code: str) -> str:
    """The digits (separators already removed; at most MAX_RAW_LENGTH chars) made canonical and checked."""
    if not digits.isdigit() or not digits.isascii():
        raise InvalidPhone("is not a phone number")
    if digits.startswith("0"):
        digits = default_country_code + digits[1:]
    if not 7 <= len(digits) <= 15 or not _valid_digits(digits):
        raise InvalidPhone("is not a valid phone number")
    return digits


@functools.lru_cache(maxsize=16384)  # ~3 MB at most
def _valid_digits(digits: str) -> bool:
    """phonenumbers' verdict on ``+digits`` (pure Python and slow; every send asks twice, so remember it)."""
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse("+" + digits, None)))
    except phonenumbers.NumberParseException:
        return False


def normalize_bulk(raw: str, default_country_code: str = "60") -> str:
    """:func:`normalize` for long lists (a campaign's 100,000 recipients): the same answer, ~4x faster,
    and the per-send memos are left alone (a bulk list would only evict what sends reuse)."""
    if not isinstance(raw, str) or len(raw) > MAX_RAW_LENGTH:
        return normalize(raw, default_country_code)  # raises with normalize's message
    digits = raw if raw.isdigit() else _SEPARATORS.sub("", raw).removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        raise InvalidPhone(f"{raw!r} is not a phone number")
    if digits.startswith("0"):
        digits = default_country_code + digits[1:]
    if not 7 <= len(digits) <= 15 or not (_valid_direct(digits) or _valid_digits.__wrapped__(digits)):
        raise InvalidPhone(f"{raw!r} is not a valid phone number")
    return digits


def _valid_direct(digits: str) -> bool:
    """Validity without ``phonenumbers.parse`` (most of its cost): country codes are prefix-free, so the
    first known one of 1-3 digits is the one. A "no" is asked again the slow way (leading zeros)."""
    for k in (1, 2, 3):
        code = int(digits[:k])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            rest = digits[k:]
            if not rest or rest.startswith("0"):
                return False
            rules = _region_rules(code)
            if rules is not None:
                return rules.valid(rest)
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(rest))
            return bool(phonenumbers.is_valid_number(number))
    return False


_Desc = tuple[frozenset[int], re.Pattern[str]]


class _RegionRules:
    """phonenumbers' validity test for a country code of one region, with its patterns compiled once.

    ``is_valid_number`` asks: does the national number match the region's general pattern, and then
    any of its type patterns (premium rate, toll free, …, fixed line, mobile), each gated by its
    possible lengths? It walks ~10 descriptions through layers of calls and a regex cache (~60 µs a
    number; a 100,000-row campaign spent 6 s there). The answer does not depend on which type matches,
    so the same test runs here on precompiled patterns, the commonest types (mobile, fixed line) first.
    ``tests/test_phones.py`` holds it to phonenumbers' answer across every such country code.
    """

    __slots__ = ("general", "types")

    def __init__(self, general: _Desc, types: list[_Desc]) -> None:
        self.general = general
        self.types = types

    def valid(self, national: str) -> bool:
        n = len(national)
        lengths, pattern = self.general
        if (lengths and n not in lengths) or pattern.fullmatch(national) is None:
            return False
        return any((not lengths or n in lengths) and pattern.fullmatch(national) is not None
                   for lengths, pattern in self.types)  # fmt: skip


def _desc(desc: object) -> _Desc | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None  # phonenumbers: an empty description matches nothing
    return frozenset(getattr(desc, "possible_length", None) or ()), re.compile(pattern)


@functools.cache
def _region_rules(code: int) -> _RegionRules | None:
    """The fast test for ``code``, or None where phonenumbers must choose among regions (+1, +7, +44…)
    or the code is not geographic: those go the slow way."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code) or ()
    if len(regions) != 1 or regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(regions[0], None)
    general = _desc(metadata.general_desc) if metadata is not None else None
    if metadata is None or general is None:
        return None
    kinds = ("mobile", "fixed_line", "premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
             "pager", "uan", "voicemail")  # fmt: skip
    types = [d for d in (_desc(getattr(metadata, kind, None)) for kind in kinds) if d is not None]
    return _RegionRules(general, types)


def to_jid(raw: str, default_country_code: str = "60") -> str:
    """A recipient as a JID: phone digits become ``<digits>@s.whatsapp.net``;
    a user or group JID is kept (its user part checked)."""
    if isinstance(raw, str) and "@" in raw:
        if len(raw) > MAX_RAW_LENGTH:
            raise InvalidPhone(f"{_shown(raw)} is too long for a WhatsApp JID (at most {MAX_RAW_LENGTH} characters)")
        m = _JID.match(raw.strip())
        if not m:
            raise InvalidPhone(f"{raw!r} is not a WhatsApp JID")
        if m.group(1):
            return normalize(m.group(1), default_country_code) + "@s.whatsapp.net"
        return m.group(2) + "@g.us"
    return normalize(raw, default_country_code) + "@s.whatsapp.net"


def mask(phone: str | None) -> str | None:
    """``60123456789`` → ``6012****789`` for display."""
    if not phone:
        return None
    if len(phone) <= 7:
        return phone[:2] + "*" * (len(phone) - 2)
    return phone[:4] + "*" * (len(phone) - 7) + phone[-3:]
