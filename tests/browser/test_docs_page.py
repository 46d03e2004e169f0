"""``GET /docs``: Swagger UI renders the OpenAPI 3.1 document in headless chromium, offline."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from gateway.api.openapi import document

from .conftest import DESKTOP, GatewayProcess, snap

pytestmark = pytest.mark.browser


async def test_swagger_ui_lists_every_operation_with_no_outside_request(gateway: GatewayProcess, new_page: Any) -> None:
    """Every documented operation and webhook is shown, the page says OAS 3.1, and nothing is fetched from another host."""
    page = await new_page(DESKTOP)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(gateway.base_url) else None)
    await page.goto(gateway.base_url + "/docs")
    doc = document()
    # The operations, and the webhook events (OpenAPI 3.1's top-level `webhooks`, shown after them).
    sections = [*doc["paths"].values(), *doc["webhooks"].values()]
    expected = sum(1 for item in sections for m in item if m in ("get", "post", "patch", "delete"))
    await expect(page.locator(".opblock")).to_have_count(expected)
    await expect(page.locator(".info .title")).to_contain_text("OAS 3.1")
    assert await page.locator(".errors-wrapper").count() == 0
    assert outside == []
    await snap(page, "docs")
