"""Base classes of the API models and the field annotations they share.

Names are camelCase on the wire (``rename="camel"``), snake_case in Python. A
request body is a :class:`Body`: every field optional and nullable at the decoding
stage, because which *missing* field answers which error code is the contract's
check order (§2), run after decoding by the route — decoding itself only answers
``INVALID_REQUEST`` for a body that is not a JSON object with the right field types.
``Rules`` carries the value rules (lengths, formats, enums) into the JSON Schema of
the OpenAPI document; the checks that enforce them run in that §2 order and name
the constants used here, so the document and the checks share one number.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from gateway.settings import WEBHOOK_EVENT_NAMES

MAX_TEXT = 65_536  # characters of a message text (INVALID_MESSAGE above it)
MAX_DEVICE_NAME = 100
MAX_KEY_NAME = 64
EVENT_NAMES = sorted(WEBHOOK_EVENT_NAMES)
DEVICE_STATUSES = ("pairing", "connected", "disconnected", "logged_out")


class Body(msgspec.Struct, rename="camel", kw_only=True):
    """A request body. Unknown fields are ignored, as they always were."""

    # The fields a route requires (checked after decoding, in §2 order): the document marks them required.
    __required__: ClassVar[tuple[str, ...]] = ()


class Model(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Response data. Unknown fields are refused when a service's dict is converted, so a
    shape that grows without its model fails the suite instead of drifting from the document."""


def rules(**schema: Any) -> msgspec.Meta:
    """JSON Schema keywords for the document only (enforced by the route's ordered checks)."""
    return msgspec.Meta(extra_json_schema=schema)


def described(text: str, **schema: Any) -> msgspec.Meta:
    return msgspec.Meta(description=text, extra_json_schema=schema or None)
