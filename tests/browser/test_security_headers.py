"""Security headers on the pages: present on every page and asset, and the pages work under them.

The conftest's ``page_errors`` fails any browser test whose page reports a Content-Security-Policy
violation, so every other browser test also checks the pages against their CSP; these tests visit each
page on purpose and look at the headers themselves.
"""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from gateway.api.routes import docs
from gateway.api.routes.pages import STATIC

from .conftest import DESKTOP, GatewayProcess, PageErrors

pytestmark = pytest.mark.browser

BROWSER_FACING = [
    "/",
    "/console",
    "/static/js/main.js",
    "/static/js/console.js",
    "/static/style.css",
    "/docs",
    "/docs/static/swagger-ui-bundle.js",
]


def directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.parametrize("path", BROWSER_FACING)
async def test_every_page_and_asset_carries_the_security_headers(gateway: GatewayProcess, path: str) -> None:
    """CSP with scripts from the gateway only, no framing, no sniffing, no referrer to other sites."""
    async with httpx.AsyncClient(base_url=gateway.base_url) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text[:200]
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    csp = directives(headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no other host
    assert csp["default-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    if not path.startswith("/docs"):
        assert csp["style-src"] == ["'self'"]  # only Swagger UI needs inline styles


def test_api_responses_are_not_given_page_headers() -> None:
    """The headers belong to what a browser renders; the JSON API keeps its lean responses."""
    from gateway.api.routes.pages import routes

    assert {getattr(r, "path", None) for r in routes} == {"/", "/console", "/static"}


class _InlineFinder(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would refuse: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script":
            self._in_script = "src" not in names
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name == "style":
                self.found.append(f"<{tag} style={value!r}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:40]}")


@pytest.mark.parametrize("source", ["index.html", "console.html", "docs"])
def test_pages_have_no_inline_script_handler_or_style(source: str) -> None:
    html = docs.PAGE if source == "docs" else (STATIC / source).read_text()
    finder = _InlineFinder()
    finder.feed(html)
    assert finder.found == []


def test_scripts_write_no_style_attributes_or_inline_handlers() -> None:
    """The modules set styles through CSSOM (allowed) and never write style or on* attributes (refused)."""
    for path in sorted(Path(STATIC, "js").glob("*.js")):
        text = path.read_text()
        assert not re.search(r"setAttribute\(\s*['\"](style|on\w+)['\"]", text), path.name
        assert not re.search(r"['\"]style['\"]\s*:", text), path.name  # el(tag, {style: …})
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path.name
        assert "eval(" not in text and "new Function" not in text, path.name


async def test_pages_run_under_their_csp_with_no_violation(
    gateway: GatewayProcess, new_page: Any, page_errors: PageErrors, api: httpx.AsyncClient
) -> None:
    """Sign in, pair (the QR SVG is injected), open the console and Swagger UI: no CSP violation anywhere."""
    token = "60123456790"
    page = await new_page(DESKTOP)
    seen_csp: list[str] = []
    page.on(
        "response",
        lambda r: seen_csp.append(r.url) if r.headers.get("content-security-policy") else None,
    )
    await page.goto(gateway.base_url + "/")
    await page.get_by_role("textbox", name="API key", exact=True).fill(gateway.api_key)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#live-badge")).to_have_text("Live")
    await page.get_by_role("button", name="+ Add device").click()
    await page.get_by_label("Phone number", exact=True).fill(token)
    await page.get_by_role("button", name="Start pairing").click()
    await expect(page.locator("#qr-box svg")).to_be_visible()
    await expect(page.locator("#qr-countdown-text")).to_be_visible()

    await page.goto(gateway.base_url + "/console")
    await expect(page.locator("#ws-badge")).to_have_text("Connected")  # the key carried over from the tab

    await page.goto(gateway.base_url + "/docs")
    await expect(page.locator(".opblock").first).to_be_visible()
    await page.locator(".opblock-summary").first.click()  # expands: React re-renders with styles
    await expect(page.locator(".opblock-body").first).to_be_visible()

    assert page_errors.csp_violations == []
    assert gateway.base_url + "/" in seen_csp
    assert gateway.base_url + "/docs" in seen_csp
    await api.delete(f"/devices/{token}")


async def test_an_injected_inline_script_is_refused(
    gateway: GatewayProcess, new_page: Any, page_errors: PageErrors
) -> None:
    """The CSP is really enforced: script text added to the page does not run, and is reported."""
    page = await new_page(DESKTOP)
    await page.goto(gateway.base_url + "/")
    violations = await page.evaluate(
        """() => new Promise((resolve) => {
            const seen = [];
            document.addEventListener('securitypolicyviolation', (e) => {
                seen.push(e.violatedDirective);
                resolve(seen);
            });
            const s = document.createElement('script');
            s.textContent = 'window.__ran = true';
            document.body.append(s);
        })"""
    )
    assert violations and violations[0].startswith("script-src")
    assert await page.evaluate("window.__ran === undefined")
    # The watcher saw it too (so it would catch one the page caused); this one was deliberate.
    deadline = asyncio.get_running_loop().time() + 5
    while not page_errors.csp_violations:
        assert asyncio.get_running_loop().time() < deadline, "the CSP violation was not reported on the console"
        await page.wait_for_timeout(50)
    assert all("script-src" in v for v in page_errors.csp_violations)
    page_errors.errors.clear()
