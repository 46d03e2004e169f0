"""The API's request and response shapes, written once as msgspec Structs.

Why msgspec (and not pydantic): a request body is decoded *and* type-checked in one
C pass straight into a typed object, with no intermediate dict — a ``POST /messages``
body costs 0.26 µs against 0.92 µs for the ``orjson.loads`` + ``isinstance`` checks it
replaces, 0.47 against 1.40 µs with the §2 value checks (``python -m bench.body_decode``;
issue 19 measured 0.47 vs 2.11), so the hot path gets faster, not slower. It is one
small wheel with no dependencies (pydantic brings pydantic-core, annotated-types and
typing-inspection); Structs are plain typed classes that mypy --strict checks at
every construction; and ``msgspec.json.schema_components`` turns the same classes into
the JSON Schema components of the OpenAPI document (:mod:`gateway.api.openapi`), so the
description cannot drift from what the routes accept and answer.

- :mod:`.base` — the base classes (camelCase on the wire) and field helpers;
- :mod:`.requests` — request bodies; :mod:`.decode` reads them, the one place that does;
- :mod:`.responses` — the ``data`` of every JSON success response;
- :mod:`.events` — webhook event bodies (the document's ``webhooks`` section).
"""
