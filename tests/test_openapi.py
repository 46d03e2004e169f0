"""The OpenAPI document: valid 3.1, in step with the real route table, served with Swagger UI."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from gateway.api.errors import STATUS
from gateway.api.openapi import document
from gateway.api.routes.docs import PAGE
from gateway.app import create_app
from gateway.settings import WEBHOOK_EVENT_NAMES, Settings
from tests.support.constants import OTHER, TOKEN
from tests.support.gateway import Gateway
from tests.support.webhook_receiver import Receiver

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
ASSET_MOUNTS = ("/static", "/docs/static")  # files, not API operations
# Served but intentionally not API operations (API.md describes them): the pages, Swagger UI, the WebSocket.
NOT_OPERATIONS = {("GET", "/"), ("GET", "/console"), ("GET", "/docs"), ("GET", "/ws")}


def route_table(routes: list[BaseRoute]) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation the app serves."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            assert route.path in ASSET_MOUNTS, (
                f"unexpected mount {route.path}: describe it in gateway/api/operations.py"
            )
            continue
        if isinstance(route, WebSocketRoute):
            found.add(("GET", route.path))
        elif isinstance(route, Route):
            path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)  # {id:int} → {id}
            found.update((m, path) for m in route.methods or () if m != "HEAD")
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in HTTP_METHODS}


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, item[m]) for p, item in doc["paths"].items() for m in item if m in HTTP_METHODS]


@pytest.mark.parametrize("driver", ["sandbox", "neonize"])
def test_every_route_is_documented_and_every_entry_is_a_route(settings: Settings, driver: str) -> None:
    """The spec and the app's route table name exactly the same (method, path) pairs (pages, /docs and
    /ws are served but are not API operations)."""
    app = create_app(replace(settings, wa_driver=driver))
    served = route_table(app.routes)
    assert served >= NOT_OPERATIONS
    served -= NOT_OPERATIONS
    spec = documented(document(sandbox=driver == "sandbox"))
    missing, stale = sorted(served - spec), sorted(spec - served)
    assert not missing and not stale, f"routes without a spec entry: {missing}; spec entries without a route: {stale}"


def test_document_is_valid_openapi_3_1() -> None:
    """The document validates against the OpenAPI 3.1 meta-schema and every $ref resolves."""
    doc = document()
    jsonschema_rs.validator_for(OPENAPI_31).validate(doc)
    refs = set(re.findall(r"'\$ref': '#/components/schemas/(\w+)'", str(doc)))
    assert refs and refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])


def test_every_error_code_is_documented() -> None:
    """Each contract code is answered by some operation (listed in its ``x-error-codes`` and description);
    405 applies to all of them (the shared Error response's ``Allow`` header)."""
    doc = document()
    seen: set[str] = set()
    for _, _, op in operations(doc):
        seen.update(op["x-error-codes"])
        for code in op["x-error-codes"]:
            assert f"`{code}`" in op["description"]
    assert set(STATUS) - seen == {"METHOD_NOT_ALLOWED"}
    assert "405" in doc["components"]["responses"]["Error"]["headers"]["Allow"]["description"]
    assert doc["components"]["schemas"]["ErrorCode"]["enum"] == list(STATUS)


def test_keyed_routes_document_401_and_body_routes_document_400_and_413() -> None:
    """Every route behind a key can answer 401; every route reading a body can answer 400 and 413."""
    for method, path, op in operations(document()):
        public = op.get("security") == []
        if not public:
            assert "401" in op["responses"], (method, path)
        if "requestBody" in op:
            assert {"400", "413"} <= set(op["responses"]), (method, path)
        assert "200" in op["responses"], (method, path)


async def test_openapi_json_and_docs_are_public_and_served_offline(gw: Gateway) -> None:
    """/openapi.json is the document; /docs is Swagger UI whose assets all come from this server."""
    r = await gw.anon.get("/openapi.json")
    assert r.status_code == 200
    assert r.json() == document(sandbox=True)
    page = await gw.anon.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "openapi.json" in page.text
    assert "http://" not in PAGE and "https://" not in PAGE  # no CDN
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) >= 3
    for asset in assets:
        got = await gw.anon.get("/" + asset)
        assert got.status_code == 200, asset
        assert len(got.content) > 100


def test_swagger_ui_assets_render_openapi_3_1() -> None:
    """The shipped Swagger UI knows OpenAPI 3.1 (4.x refuses a 3.1 document outright)."""
    from gateway.api.routes.docs import swagger_static_dir

    static = swagger_static_dir()
    assert static is not None
    bundle = (static / "swagger-ui-bundle.js").read_text(encoding="utf-8", errors="replace")
    assert "isOAS31" in bundle
    assert (static / "swagger-ui-standalone-preset.js").exists()


# --- generated-client friendliness (issue 18) -------------------------------------------------------


def test_operation_ids_are_unique_and_the_error_response_is_shared() -> None:
    """Every operation has a camelCase operationId, once; every error status $refs the one Error response."""
    doc = document()
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z][A-Za-z]+", i) for i in ids), ids
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if status != "200":
                assert response == {"$ref": "#/components/responses/Error"}, (method, path, status)
        statuses = {str(STATUS[c]) for c in op["x-error-codes"]}
        assert set(op["responses"]) - {"200"} == statuses, (method, path)
    error = doc["components"]["responses"]["Error"]
    assert error["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_files_are_their_own_operations_with_one_media_type() -> None:
    """The CSV export and the QR images are separate operations, one media type each (images binary);
    the JSON listing's ``limit`` is a plain integer, in the query and in the answer."""
    paths = document()["paths"]
    for path, media, binary in [
        ("/contacts/{token}/export", "text/csv", False),
        ("/devices/{token}/qr.png", "image/png", True),
        ("/devices/{token}/qr.svg", "image/svg+xml", True),
    ]:
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert list(content) == [media], path
        assert (content[media]["schema"].get("format") == "binary") is binary, path
    for path in ("/contacts/{token}", "/devices/{token}/qr"):
        assert list(paths[path]["get"]["responses"]["200"]["content"]) == ["application/json"], path
    limit = next(p for p in paths["/contacts/{token}"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["type"] == "integer"
    page = document()["components"]["schemas"]["ContactPage"]
    assert page["properties"]["limit"] == {"type": "integer"}


def test_no_pages_docs_or_websocket_among_the_operations() -> None:
    paths = set(document()["paths"])
    assert not paths & {"/", "/console", "/docs", "/ws"}
    assert not any(p.startswith(("/static", "/docs/")) for p in paths)


def test_request_bodies_mark_what_the_route_requires() -> None:
    """Fields the route needs are required and not nullable; a null that clears (webhookUrl) stays nullable."""
    schemas = document()["components"]["schemas"]
    send = schemas["SendMessage"]
    assert send["required"] == ["token", "to"]  # one content: text or media
    assert all(send["properties"][f]["type"] == "string" for f in ("token", "to"))
    text = send["properties"]["text"]["anyOf"][0]  # text or media: either may be absent
    assert text["type"] == "string" and text["maxLength"] == 65_536
    assert send["properties"]["media"]["anyOf"][0] == {"$ref": "#/components/schemas/MediaIn"}
    create = schemas["DeviceCreate"]
    assert create["required"] == ["token"]
    assert {"type": "null"} in create["properties"]["webhookUrl"]["anyOf"]
    signup = schemas["Signup"]["properties"]  # the rules enforced by check_signup, now described
    assert signup["password"]["minLength"] == 8 and signup["username"]["pattern"].startswith("^")


def test_webhooks_section_describes_every_event() -> None:
    """A top-level ``webhooks`` entry per event: its body schema and the signature headers."""
    doc = document()
    assert set(doc["webhooks"]) == set(WEBHOOK_EVENT_NAMES)
    for name, item in doc["webhooks"].items():
        op = item["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert body["properties"]["event"]["const"] == name
        headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
        assert {"webhook-id", "webhook-timestamp", "webhook-signature", "X-Webhook-Signature", "User-Agent"} <= headers


async def test_real_webhook_bodies_match_the_documented_schemas(gateway_factory: Any, receiver: Receiver) -> None:
    """Every event the sandbox produces, as delivered, validates against its ``webhooks`` schema."""
    doc = document()
    gw = await gateway_factory(webhook_url=receiver.url, webhook_secret="s3cret", webhook_retry_base_ms=20)
    await gw.pair()
    r = await gw.post(f"/sandbox/devices/{TOKEN}/incoming", {"from": OTHER, "name": "Ola", "text": "hello"})
    first = r.json()["data"]["id"]
    await gw.post(f"/sandbox/devices/{TOKEN}/history", {"contacts": [{"phone": "60171222333", "name": "Sam"}]})
    await gw.post("/messages", {"token": TOKEN, "to": OTHER, "text": "hi"})
    await receiver.wait(lambda hits: sum(h.json()["event"] == "message.receipt" for h in hits) >= 2)
    incoming = f"/sandbox/devices/{TOKEN}/incoming"
    await gw.post(incoming, {"fromLid": "1234567890@lid", "location": {"latitude": 1.5, "longitude": 2, "name": "x"}})
    await gw.post(incoming, {"from": OTHER, "fromMe": True, "contacts": [{"name": "A", "phones": ["+60123456789"]}]})
    await gw.post(incoming, {"from": OTHER, "poll": {"name": "q", "options": ["a", "b"]}, "replyTo": first})
    await gw.post(incoming, {"from": OTHER, "media": {"data": "aGVsbG8=", "mimetype": "audio/ogg", "voiceNote": True}})
    await gw.post(incoming, {"from": OTHER, "reaction": {"messageId": first, "emoji": "👍"}})
    await gw.post(f"/sandbox/devices/{TOKEN}/edit", {"id": first, "text": "hello!"})
    await gw.post(f"/sandbox/devices/{TOKEN}/revoke", {"id": first})
    await receiver.wait(lambda hits: any(h.json()["event"] == "message.revoked" for h in hits))
    one = {"phone": OTHER, "name": "Ola"}
    body = {"token": TOKEN, "name": "c", "message": {"text": "hi {{name}}"}, "recipients": [one], "validate": False}
    assert (await gw.post("/campaigns", body)).status_code == 201
    await receiver.wait(lambda hits: any(h.json()["event"] == "campaign" and h.json()["data"]["sent"] for h in hits))
    await gw.post(f"/sandbox/devices/{TOKEN}/unlink")
    hits = await receiver.wait(lambda hits: any(h.json()["event"] == "device.logged_out" for h in hits))
    seen = set()
    for hit in hits:
        body = hit.json()
        op = doc["webhooks"][body["event"]]["post"]
        schema = {**op["requestBody"]["content"]["application/json"]["schema"], "components": doc["components"]}
        jsonschema_rs.validator_for(schema).validate(body)
        for p in op["parameters"]:
            assert p["name"].lower() in hit.headers, p["name"]  # signed: every header is there
        seen.add(body["event"])
    assert seen == set(WEBHOOK_EVENT_NAMES) - {"device.disconnected"}
