"""The one place request bodies are read: JSON → a typed :class:`~gateway.api.models.base.Body`.

First in the §2 order after the gate (auth, body size): a body that is empty, not JSON,
not an object, or has a field of the wrong JSON type is ``INVALID_REQUEST``, with a
message naming the field. msgspec decodes and checks in one pass (no intermediate
dict), which is what keeps ``POST /messages`` cheap.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from gateway.api.errors import invalid
from gateway.api.models.base import Body

B = TypeVar("B", bound=Body)

_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_EXPECTED = re.compile(r"^Expected `([^`|]+)[^`]*`, got `[^`]*`(?: - at `\$\.?([^`]*)`)?$")
_KINDS = {"str": "a string", "int": "a number", "float": "a number", "bool": "a boolean", "array": "an array"}


def decoder(model: type[B]) -> msgspec.json.Decoder[B]:
    found = _decoders.get(model)
    if found is None:
        found = _decoders[model] = msgspec.json.Decoder(model)
    return found


def decode(raw: bytes, model: type[B]) -> B:
    """``raw`` as ``model``, or INVALID_REQUEST saying what is wrong."""
    try:
        return decoder(model).decode(raw)
    except msgspec.ValidationError as exc:
        raise invalid(_type_message(str(exc))) from exc
    except msgspec.DecodeError as exc:
        if not raw.strip():
            raise invalid("request body must be a JSON object") from exc
        raise invalid("request body is not valid JSON") from exc


async def read(request: Request, model: type[B]) -> B:
    """The request's body as ``model`` (the gate has already bounded its size)."""
    return decode(await request.body(), model)


def _type_message(text: str) -> str:
    """msgspec's "Expected `str | null`, got `int` - at `$.token`" in the API's words."""
    match = _EXPECTED.match(text)
    if match is None:
        return f"request body: {text}"
    expected, where = match.groups()
    if not where:
        return "request body must be a JSON object"
    return f"'{where}' must be {_KINDS.get(expected.strip(), 'an object')}"
