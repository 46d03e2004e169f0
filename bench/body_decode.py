"""``python -m bench.body_decode``: the cost of reading a ``POST /messages`` body, in-process.

Compares the typed decode the routes use (msgspec into ``SendMessage``) with the way bodies
were read before it (``orjson.loads`` and an ``isinstance`` check per field, kept here as the
baseline), each alone and followed by the §2 value checks both paths run. Interleaved rounds,
best and median per variant, in microseconds. Not part of ``make bench``: it has no target,
it is the measurement behind README's "Request bodies" line.
"""

from __future__ import annotations

import argparse
import timeit
from typing import Any

import orjson

from gateway.api.errors import invalid
from gateway.api.models.decode import decode
from gateway.api.models.requests import SendMessage
from gateway.api.routes.common import require_token
from gateway.api.routes.messages import message_text

RAW = b'{"token":"60123456789","to":"60198765432","text":"Hello from the benchmark"}'
FIELDS: dict[str, type] = {"token": str, "to": str, "text": str}


def orjson_and_checks(raw: bytes) -> dict[str, Any]:
    """The baseline: the body as a dict, then one type check per listed field."""
    if not raw.strip():
        raise invalid("request body must be a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid("request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    for name, kind in FIELDS.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise invalid(f"'{name}' has the wrong type")
    return body


def _value_checks(token: Any, to: Any, text: Any) -> None:
    require_token(token)
    if not isinstance(to, str) or not to.strip():
        raise invalid("to")
    message_text(text)


def before_decode() -> None:
    orjson_and_checks(RAW)


def after_decode() -> None:
    decode(RAW, SendMessage)


def before_full() -> None:
    body = orjson_and_checks(RAW)
    _value_checks(body.get("token"), body.get("to"), body.get("text"))


def after_full() -> None:
    body = decode(RAW, SendMessage)
    _value_checks(body.token, body.to, body.text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    variants = {"before_decode": before_decode, "after_decode": after_decode}
    variants |= {"before_full": before_full, "after_full": after_full}
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            results[name].append(min(timeit.repeat(fn, number=args.number, repeat=3)) / args.number * 1e6)
    for name, times in results.items():
        times.sort()
        print(f"{name:14s} best {times[0]:.3f} µs  median {times[len(times) // 2]:.3f} µs")


if __name__ == "__main__":
    main()
