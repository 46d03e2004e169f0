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
from gateway.settings import Settings
from tests.support.gateway import Gateway

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
ASSET_MOUNTS = ("/static", "/docs/static")  # files, not API operations
# Served but intentionally not API operations (API.md describes them): the pages, Swagger UI, the WebSocket.
NOT_OPERATIONS = {("GET", "/"), ("GET", "/console"), ("GET", "/docs"), ("GET", "/ws")}


def route_table(routes: list[BaseRoute]) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation the app serves."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            assert route.path in ASSET_MOUNTS, f"unexpected mount {route.path}: describe it in gateway/api/operations.py"
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
    assert NOT_OPERATIONS <= served
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
