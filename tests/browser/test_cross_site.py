"""Issue 13 §2 in a real browser: a page on another port of 127.0.0.1 (the same *site*, so the
SameSite=Lax session cookie goes along) tries to act for a signed-in user — a no-CORS fetch, a
text/plain form POST that would mint an API key, a JSON fetch, and a WebSocket that would stream
the user's frames. None of it may work; the gateway's own page, with the same cookie, still works.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import GatewayProcess
from tests.support.poll import until

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
TOKEN = "60123456712"

ATTACK = """<!doctype html>
<meta charset="utf-8">
<title>attacker</title>
<iframe name="sink" id="sink"></iframe>
<form id="mint" method="POST" action="{gw}/auth/keys" enctype="text/plain" target="sink">
  <input name='{{"name":"stolen","x":"' value='"}}'>
</form>
<script>
window.results = {{}};
async function attack() {{
  const r = window.results;
  try {{
    await fetch("{gw}/devices", {{method: "POST", mode: "no-cors", credentials: "include",
      headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{token: "{token}"}})}});
    r.noCors = "sent";
  }} catch (e) {{ r.noCors = "error"; }}
  try {{
    const res = await fetch("{gw}/devices", {{method: "POST", credentials: "include",
      headers: {{"Content-Type": "application/json"}}, body: JSON.stringify({{token: "{token}"}})}});
    r.cors = "status " + res.status;
  }} catch (e) {{ r.cors = "blocked"; }}
  await new Promise((done) => {{
    document.getElementById("sink").addEventListener("load", () => done(), {{once: true}});
    document.getElementById("mint").submit();
  }});
  r.form = "submitted";
  r.ws = await new Promise((done) => {{
    const frames = [];
    const ws = new WebSocket("{ws}/ws");
    ws.onmessage = (m) => frames.push(JSON.parse(m.data).event);
    ws.onclose = (e) => done({{frames, code: e.code}});
    setTimeout(() => {{ try {{ ws.close(); }} catch (e) {{}} done({{frames, code: "timeout"}}); }}, 5000);
  }});
  r.done = true;
}}
attack();
</script>
"""


@pytest.fixture
def attacker_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A second origin on loopback: a tiny static HTTP server on another port."""
    root = tmp_path / "evil"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def wait_for(page: Any, expression: str, timeout: float = 15.0) -> Any:
    return await until(lambda: page.evaluate(expression), timeout, expression)


async def test_another_origin_cannot_use_the_session_cookie(
    gateway: GatewayProcess, new_page: Any, api: httpx.AsyncClient, attacker_site: tuple[Path, str]
) -> None:
    created = await api.post(
        "/auth/signup", json={"username": "victim", "email": "victim@example.com", "password": PASSWORD}
    )
    assert created.status_code == 200, created.text
    victim_key = created.json()["data"]["apiKey"]
    root, evil = attacker_site
    gw = gateway.base_url
    (root / "attack.html").write_text(
        ATTACK.format(gw=gw, ws=gw.replace("http://", "ws://"), token=TOKEN), encoding="utf-8"
    )

    page = await new_page()
    await page.goto(gw + "/health")
    signed_in = await page.evaluate(
        """async ([password]) => {
            const r = await fetch('/auth/login', {method: 'POST', headers: {'Content-Type': 'application/json'},
              body: JSON.stringify({username: 'victim', password})});
            return r.status;
        }""",
        [PASSWORD],
    )
    assert signed_in == 200
    assert any(c["name"] == "gw_session" for c in await page.context.cookies())
    async with httpx.AsyncClient(base_url=gw, headers={"X-API-Key": victim_key}) as victim:
        keys_before = len((await victim.get("/auth/keys")).json()["data"]["keys"])

        attack = await page.context.new_page()
        await attack.goto(evil + "/attack.html")
        results = await wait_for(attack, "window.results && window.results.done && window.results")

        # Nothing happened on the gateway: no device, no new key; the socket never got a frame.
        assert (await victim.get(f"/devices/{TOKEN}")).status_code == 404
        assert (await api.get(f"/devices/{TOKEN}")).status_code == 404
        assert len((await victim.get("/auth/keys")).json()["data"]["keys"]) == keys_before
        assert results["ws"]["frames"] == [], results
        assert results["cors"] == "blocked", results  # no CORS_ORIGINS: the browser never lets it read

        # The gateway's own page, with the same cookie, may do all of it.
        own = await page.evaluate(
            """async ([token]) => {
                const r = await fetch('/devices', {method: 'POST', headers: {'Content-Type': 'application/json'},
                  body: JSON.stringify({token})});
                const frames = await new Promise((done) => {
                  const got = [];
                  const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws');
                  ws.onmessage = (m) => { got.push(JSON.parse(m.data).event); ws.close(); };
                  ws.onclose = () => done(got);
                });
                return {status: r.status, frames};
            }""",
            [TOKEN],
        )
        assert own == {"status": 200, "frames": ["connected"]}, own
        assert (await victim.get(f"/devices/{TOKEN}")).status_code == 200
        with contextlib.suppress(Exception):
            await victim.delete(f"/devices/{TOKEN}")
