"""``python -m gateway`` / ``wa-gateway``: serve until SIGTERM or SIGINT.

uvicorn.run re-raises SIGTERM after its graceful shutdown (exit 143); the
contract asks for 0, so this runs ``uvicorn.Server`` itself and owns the
signals: stop accepting, finish in-flight requests, close devices, exit 0
within 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import sys

import uvicorn

from gateway.logs import configure
from gateway.settings import Settings, SettingsError


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"wa-gateway: invalid configuration: {exc}", file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level, settings.log_format)
    raise_open_files_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency, but stay runnable without it
        pass
    sys.exit(asyncio.run(serve(settings)))


def raise_open_files_limit() -> None:
    """Every WebSocket client and device holds descriptors; the usual soft limit of 1024 is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def serve(settings: Settings) -> int:
    from gateway.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http="httptools",
        ws="websockets-sansio",
        # Frames are small JSON: per-message deflate saves little on them, yet costs a zlib stream per
        # listener (hundreds of KiB, and a compression per frame per listener in a fan-out).
        ws_per_message_deflate=False,
        lifespan="on",
        access_log=False,
        log_level="warning",
        # In-flight requests get 3 s; devices (2.5 s) and the dispatcher (3.5 s) follow: < 10 s in all.
        timeout_graceful_shutdown=3,
        server_header=False,
        # X-Forwarded-For/-Proto are believed only from TRUSTED_PROXIES (uvicorn would trust 127.0.0.1 otherwise).
        forwarded_allow_ips=list(settings.trusted_proxies),
    )
    server = uvicorn.Server(config)
    # Our own handlers: uvicorn's would re-raise the signal after shutdown.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    await server.serve()
    # A server that never started (port in use, lifespan failure) is an error.
    return 0 if server.started else 1


if __name__ == "__main__":
    main()
