"""Fixtures for the browser tests: the real server process, headless chromium, a frame listener.

The server runs as ``python -m gateway`` with the sandbox driver, so the tests
see exactly what a user's browser sees. Chromium is Debian's (its headless shell,
``/usr/bin/chromium-headless-shell``), never a downloaded build.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets

ROOT = Path(__file__).resolve().parents[2]
# Debian's build of Chromium's headless shell (package chromium-headless-shell): the same engine as Debian's
# chromium, without the full browser's windowing layers, so a page costs about a third of the CPU
# (the browser lane: 53 core-seconds against 92). CHROMIUM=/usr/bin/chromium runs the lane on the full browser.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium-headless-shell")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "test-output" / "screenshots"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class GatewayProcess:
    """One ``python -m gateway`` process with the sandbox driver."""

    port: int
    data_dir: Path
    api_key: str
    log_path: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?apiKey={self.api_key}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> None:
        env = {
            **os.environ,
            "WA_DRIVER": "sandbox",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DATA_DIR": str(self.data_dir),
            "API_KEY": self.api_key,
            "SANDBOX_QR_INTERVAL_MS": "20000",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            **self.env_extra,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=1.0) as client:
            while True:
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"gateway did not answer /health within {START_TIMEOUT_S}s:\n{self.log_tail()}")
                # Waiting on the process doubles as the pause between polls and notices an early exit.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self.proc.wait(timeout=0.05)
                    pytest.fail(f"gateway exited with {code} during start-up:\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait(timeout=5)
        return proc.returncode


def _new_gateway(tmp: Path) -> GatewayProcess:
    return GatewayProcess(
        port=free_port(),
        data_dir=tmp / "data",
        api_key="test-admin-" + secrets.token_hex(12),
        log_path=tmp / "gateway.log",
    )


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway shared by the tests that do not need to restart it."""
    gw = _new_gateway(tmp_path_factory.mktemp("gateway"))
    gw.data_dir.mkdir()
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def spawn_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateways of this test's own (with extra env); it may stop and start them again."""
    started: list[GatewayProcess] = []

    def spawn(**env: str) -> GatewayProcess:
        home = tmp_path / f"gw{len(started)}"
        home.mkdir()
        gw = _new_gateway(home)
        gw.env_extra.update(env)
        gw.data_dir.mkdir()
        started.append(gw)
        gw.start()
        return gw

    yield spawn
    for gw in started:
        gw.stop()


@pytest.fixture
def own_gateway(spawn_gateway: Callable[..., GatewayProcess]) -> GatewayProcess:
    """A gateway this test may stop and start again."""
    return spawn_gateway()


@pytest_asyncio.fixture(loop_scope="session")
async def api(gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=gateway.headers, timeout=10) as client:
        yield client


# ----------------------------------------------------------------- browser

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests run in the session's event loop, where the one browser lives; so does every
    async fixture they use (``loop_scope="session"`` on each: a new async fixture here needs it too)."""
    in_session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if pytest_asyncio.is_async_test(item) and HERE in Path(str(item.path)).parents:
            item.add_marker(in_session_loop, append=False)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.path.exists(path):
        pytest.fail(
            f"Debian chromium not found at {CHROMIUM}: `make test` installs it (apt-get install -y {Path(CHROMIUM).name})"
        )
    return path


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    """One chromium for the session (starting Playwright and the browser costs ~1.5 s); every page
    gets a context of its own (``new_page``), as isolated as a fresh browser."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


# Runs before any page script (injected by the browser, so the page's CSP does not apply to it): every
# Content-Security-Policy violation the page causes is reported on the console, where PageErrors sees it.
REPORT_CSP_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@dataclass
class PageErrors:
    """Uncaught exceptions and Content-Security-Policy violations seen on the watched pages."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and ("CSP violation" in text or "Content Security Policy" in text):
            self.errors.append(f"csp: {text}")

    @property
    def csp_violations(self) -> list[str]:
        return [e for e in self.errors if e.startswith("csp: ")]


@pytest.fixture
def page_errors() -> Iterator[PageErrors]:
    """Uncaught exceptions and CSP violations in any watched page fail the test."""
    errs = PageErrors()
    yield errs
    assert not errs.errors, "JavaScript errors or CSP violations on the page:\n" + "\n".join(errs.errors)


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Any, page_errors: PageErrors) -> AsyncIterator[Callable[..., Any]]:
    """Open a page in a new browser context; the test's contexts are closed at its end."""
    contexts: list[Any] = []

    async def make(viewport: dict[str, int] = DESKTOP, color_scheme: str = "light", **kwargs: Any) -> Any:
        context = await browser.new_context(
            viewport=viewport, accept_downloads=True, color_scheme=color_scheme, **kwargs
        )
        contexts.append(context)
        await context.add_init_script(REPORT_CSP_VIOLATIONS)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        page_errors.watch(page)
        return page

    yield make
    for context in contexts:
        await context.close()


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"


async def snap(page: Any, name: str) -> Path:
    """A full-page screenshot from the top (so a sticky header sits where a user sees it)."""
    path = screenshot_path(name)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
    return path


# ----------------------------------------------------------------- frames


class FrameListener:
    """Our own WebSocket client: records every frame the gateway sends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._ws: Any = None

    async def __aenter__(self) -> FrameListener:
        self._ws = await websockets.connect(self.url)
        self._task = asyncio.create_task(self._pump())
        await self.wait_for(lambda f: f.get("event") == "connected")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _pump(self) -> None:
        async for raw in self._ws:
            frame = json.loads(raw)
            async with self._changed:
                self.frames.append(frame)
                self._changed.notify_all()

    def latest(self, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        for frame in reversed(self.frames):
            if pred(frame):
                return frame
        return None

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.latest(pred) is not None)
        found = self.latest(pred)
        assert found is not None
        return found


@pytest_asyncio.fixture(loop_scope="session")
async def frames(gateway: GatewayProcess) -> AsyncIterator[FrameListener]:
    async with FrameListener(gateway.ws_url) as listener:
        yield listener
