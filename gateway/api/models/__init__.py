"""The API's request and response shapes, written once as msgspec Structs.

Why msgspec (and not pydantic): a request body is decoded *and* type-checked in one
C pass straight into a typed object — 0.47 µs against 2.11 µs for the hand-written
``orjson.loads`` + ``isinstance`` checks it replaces (issue 19's measurement; ours is
in the report of the change), so the hot ``POST /messages`` path gets faster, not
slower; it adds one small wheel with no dependencies (pydantic brings pydantic-core,
annotated-types and typing-inspection); and ``msgspec.json.schema_components`` turns
the same classes into the JSON Schema components of the OpenAPI document
(:mod:`gateway.api.openapi`), so the description cannot drift from what the routes
accept and answer.

- :mod:`.base` — the base classes (camelCase on the wire) and field helpers;
- :mod:`.requests` — request bodies; :mod:`.decode` reads them, the one place that does;
- :mod:`.responses` — the ``data`` of every JSON success response;
- :mod:`.events` — webhook event bodies (the document's ``webhooks`` section).
"""
