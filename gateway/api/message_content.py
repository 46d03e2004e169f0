"""The content fields of a message (CONTRACT §11): decoded request parts in, the driver seam's types out.

Shared by ``POST /messages`` and the sandbox's ``/incoming`` so both read a
location, a contacts list or a poll the same way. The JSON types were checked
when the body was decoded (``INVALID_REQUEST``); the value rules here answer
``INVALID_MESSAGE`` with the field named, before anything is sent.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gateway.api.errors import ApiError
from gateway.api.models.base import MAX_TEXT
from gateway.api.models.messages import MAX_CONTACTS, MAX_POLL_OPTIONS, ContactIn, LocationIn, PollIn, ReactionIn
from gateway.drivers.base import ContactCard, Location, Poll

MAX_NAME = 1024
MAX_OPTION = 100
CONTENT_FIELDS = ("text", "media", "location", "contacts", "reaction", "poll")
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./-]{3,40}$")


def bad(message: str) -> ApiError:
    return ApiError("INVALID_MESSAGE", message)


def one_content(body: Any) -> str:
    """The name of the one content field present on ``body``; none or two → INVALID_MESSAGE."""
    present = [name for name in CONTENT_FIELDS if getattr(body, name, None) is not None]
    if len(present) != 1:
        if not present:
            raise bad("a message needs one of 'text', 'media', 'location', 'contacts', 'reaction' or 'poll'")
        raise bad(f"a message has exactly one content field, not {' and '.join(repr(p) for p in present)}")
    return present[0]


def text(value: str | None, name: str = "text") -> str:
    if value is None or not value.strip() or len(value) > MAX_TEXT:
        raise bad(f"'{name}' must be 1 to 65,536 characters, not only whitespace")
    return value


def _short(value: str | None, name: str, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise bad(f"'{name}' is required")
        return None
    if (required and not value.strip()) or len(value) > MAX_NAME:
        raise bad(f"'{name}' must be at most {MAX_NAME} characters{' and not empty' if required else ''}")
    return value


def _number(value: float | None, name: str, limit: float) -> float:
    if value is None or not math.isfinite(value):
        raise bad(f"'{name}' must be a number")
    if not -limit <= value <= limit:
        raise bad(f"'{name}' must be between {-limit:g} and {limit:g}")
    return float(value)


def location(value: LocationIn) -> Location:
    """``{latitude, longitude, name?, address?}``, the coordinates in range."""
    return Location(
        latitude=_number(value.latitude, "location.latitude", 90),
        longitude=_number(value.longitude, "location.longitude", 180),
        name=_short(value.name, "location.name"),
        address=_short(value.address, "location.address"),
    )


def contacts(value: list[ContactIn]) -> tuple[ContactCard, ...]:
    """``[{name, phones:[...], email?, organization?}]``: 1 to 50 cards, each with a name and 1 to 10 phones."""
    if not 1 <= len(value) <= MAX_CONTACTS:
        raise bad(f"'contacts' must be an array of 1 to {MAX_CONTACTS} contacts")
    cards = []
    for i, item in enumerate(value):
        where = f"contacts[{i}]"
        phones = item.phones
        if not phones or len(phones) > 10:
            raise bad(f"'{where}.phones' must be an array of 1 to 10 phone numbers")
        for p in phones:
            if not _PHONE_CHARS.match(p) or not any(c.isdigit() for c in p):
                raise bad(f"'{where}.phones' holds something that is not a phone number: {p!r}")
        cards.append(
            ContactCard(
                name=str(_short(item.name, f"{where}.name", required=True)),
                phones=tuple(phones),
                email=_short(item.email, f"{where}.email"),
                organization=_short(item.organization, f"{where}.organization"),
            )
        )
    return tuple(cards)


def poll(value: PollIn) -> Poll:
    """``{name, options:[2..12 distinct strings], selectableCount?}`` (selectableCount 1..len(options))."""
    name = str(_short(value.name, "poll.name", required=True))
    options = value.options
    if (
        options is None
        or not 2 <= len(options) <= MAX_POLL_OPTIONS
        or not all(o.strip() and len(o) <= MAX_OPTION for o in options)
    ):
        raise bad("'poll.options' must be an array of 2 to 12 non-empty strings (at most 100 characters each)")
    if len(set(options)) != len(options):
        raise bad("'poll.options' must be distinct")
    count = 1 if value.selectable_count is None else value.selectable_count
    if not 1 <= count <= len(options):
        raise bad(f"'poll.selectableCount' must be a whole number from 1 to {len(options)}")
    return Poll(name, tuple(options), count)


def reaction(value: ReactionIn) -> tuple[str, str]:
    """``{messageId, emoji}`` → (message id, emoji); an empty emoji removes the reaction."""
    if value.message_id is None or not value.message_id.strip() or len(value.message_id) > 128:
        raise bad("'reaction.messageId' must be a message id")
    if value.emoji is None or len(value.emoji) > 32:
        raise bad("'reaction.emoji' must be an emoji, or \"\" to remove the reaction")
    return value.message_id, value.emoji


def message_id(value: str | None, name: str) -> str:
    if value is None or not value.strip() or len(value) > 128:
        raise ApiError("INVALID_REQUEST", f"'{name}' must be a message id")
    return value
