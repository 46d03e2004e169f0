"""``python -m gateway`` / ``wa-gateway``: serve until SIGTERM or SIGINT.

uvicorn.run re-raises SIGTERM after its graceful shutdown (exit 143); the
contract asks for 0, so this runs ``uvicorn.Server`` itself and owns the
signals: stop accepting, finish in-flight requests, close devices, exit 0
within 10 s.

The listening socket is bound here, before the app starts, so a port in use is
one clear line and exit code 2 (not uvicorn's log and exit 1), and "started" is
logged only once the port is really bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import resource
import signal
import socket
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import structlog
import uvicorn

from gateway import datadir
from gateway.logs import configure
from gateway.server import MAX_HEADER_BYTES, WS_MAX_FRAME, ConnectionLimits, guarded_protocol
from gateway.settings import Settings, SettingsError

if TYPE_CHECKING:
    from gateway.store.importer import ImportSummary

log = structlog.get_logger("gateway.main")


def parser() -> argparse.ArgumentParser:
    """``--help`` prints the usage and every configuration variable (the packaged ``env.example``)."""
    reference = resources.files("gateway").joinpath("env.example").read_text()
    return argparse.ArgumentParser(
        prog="wa-gateway",
        description="Self-hosted WhatsApp gateway: serves the HTTP API, the WebSocket and the console until "
        "SIGTERM or SIGINT. Configured by environment variables (or a .env file in the working directory):",
        epilog=reference,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> None:
    cli = parser()
    cli.add_argument(
        "command",
        nargs="?",
        choices=("serve", "migrate", "import-sqlite"),
        default="serve",
        help="serve (the default): run the gateway; migrate: apply the store's schema (DATABASE_URL's "
        "PostgreSQL, else DATA_DIR's SQLite file) and exit; import-sqlite DATA_DIR: move a single-node "
        "installation (gateway.db and its paired WhatsApp sessions) into DATABASE_URL's PostgreSQL, once "
        "(exit 0 done, 1 failed and nothing written, 2 bad arguments, 3 refused: the database holds data)",
    )
    cli.add_argument("source", nargs="?", type=Path, help="import-sqlite: the DATA_DIR to move")
    cli.add_argument(
        "--force",
        action="store_true",
        help="start even if DATA_DIR was created by the other WA_DRIVER (and record this driver for it)",
    )
    args = cli.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"wa-gateway: invalid configuration: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.command == "migrate":
        sys.exit(asyncio.run(migrate(settings)))
    if args.command == "import-sqlite":
        sys.exit(asyncio.run(import_sqlite(settings, args.source)))
    try:
        datadir.prepare(settings.data_dir, settings.wa_driver, force=args.force)
    except datadir.DataDirError as exc:
        print(f"wa-gateway: {exc}", file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level, settings.log_format)
    raise_open_files_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency, but stay runnable without it
        pass
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "is already in use (another wa-gateway? set PORT to another port)"
        else:
            reason = f"cannot be bound: {exc.strerror or exc}"
        print(f"wa-gateway: port {settings.port} on {settings.host} {reason}", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(serve(settings, sock)))


async def migrate(settings: Settings) -> int:
    """``wa-gateway migrate``: bring the store's schema up to date (under PostgreSQL's advisory lock),
    one line on stdout saying what was done; a failure is one line on stderr and exit 1."""
    from gateway.store.pg_schema import migrate as migrate_postgres
    from gateway.store.schema import MIGRATIONS

    try:
        if settings.database_url:
            before, after = await migrate_postgres(settings.database_url)
            where = f"PostgreSQL {_without_secrets(settings.database_url)}"
        else:
            from gateway.store import Store

            store = await Store.open(settings.data_dir)
            await store.close()
            before, after = -1, len(MIGRATIONS)
            where = f"SQLite {settings.data_dir / 'gateway.db'}"
    except Exception as exc:  # unreachable server, refused login, a schema newer than this gateway
        print(f"wa-gateway: migrate failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if before == after:
        print(f"wa-gateway: {where}: schema already at version {after}")
    else:
        done = f"from version {before} " if before >= 0 else ""
        print(f"wa-gateway: {where}: schema migrated {done}to version {after}")
    return 0


async def import_sqlite(settings: Settings, source: Path | None) -> int:
    """``wa-gateway import-sqlite DATA_DIR``: see :mod:`gateway.store.importer`. One line on stdout when
    done; a refusal or failure is one line on stderr (exit 3 / 1; 2 for what is missing to start)."""
    from gateway.store.importer import ImportRefused

    if source is None:
        print("wa-gateway: import-sqlite needs the DATA_DIR to move: import-sqlite DATA_DIR", file=sys.stderr)
        return 2
    if not settings.database_url:
        print(
            "wa-gateway: import-sqlite needs DATABASE_URL (postgresql://…): the database to move into", file=sys.stderr
        )
        return 2
    db_path = source / "gateway.db"
    if not db_path.is_file():
        print(f"wa-gateway: {db_path} does not exist: not a gateway's DATA_DIR", file=sys.stderr)
        return 2
    configure(settings.log_level, settings.log_format)  # log lines on stderr: stdout is the summary
    where = f"PostgreSQL {_without_secrets(settings.database_url)}"
    try:
        with tempfile.TemporaryDirectory(prefix="wa-gateway-import-") as scratch:
            summary = await _import(settings.database_url, db_path, Path(scratch))
    except ImportRefused as exc:
        print(f"wa-gateway: import-sqlite refused: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # unreachable server, a broken file: one transaction, so nothing was written
        print(f"wa-gateway: import-sqlite failed, nothing imported: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"wa-gateway: imported {source} into {where}: {summary.line()}")
    return 0


async def _import(url: str, db_path: Path, scratch: Path) -> ImportSummary:
    """Migrate ``gateway.db`` in place, copy each session file (consistently, WAL included) to ``scratch``
    and bring the copies and PostgreSQL to this neonize's whatsmeow schema, then import."""
    import functools
    import sqlite3

    from gateway.store import Store
    from gateway.store.importer import import_sqlite as run_import
    from gateway.store.importer import registry_tokens, sandbox_paired, session_files, whatsmeow_files

    lite = await Store.open(db_path.parent)  # brings gateway.db to this gateway's schema
    await lite.close()
    files = session_files(db_path.parent, registry_tokens(db_path))
    copies: dict[str, Path] = {}
    for token, path in whatsmeow_files(files).items():
        copy = scratch / path.name
        source = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        with contextlib.closing(source), contextlib.closing(sqlite3.connect(copy)) as target:
            source.backup(target)
        copies[token] = copy
    if copies:
        from gateway.devices.sessions import upgrade_shared_sessions
        from gateway.drivers.neonize.sessions import session_dsn, upgrade_schema

        for copy in copies.values():
            await asyncio.to_thread(upgrade_schema, str(copy))
        store = await Store.open(scratch, url)
        try:
            dsn = session_dsn(url, await store.server_version())
            await upgrade_shared_sessions(store, functools.partial(upgrade_schema, dsn))
        finally:
            await store.close()
    return await run_import(db_path, url, copies, sandbox_paired(files))


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, as uvicorn would bind it (IPv6 for an address with a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def started_fields(settings: Settings) -> dict[str, Any]:
    """Where to go and what is running: the first thing an operator reads."""
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if ":" in shown:
        shown = f"[{shown}]"
    return {
        "console": f"http://{shown}:{settings.port}/",
        "driver": settings.wa_driver,
        "data_dir": str(settings.data_dir.resolve()),
        "store": f"PostgreSQL {_without_secrets(settings.database_url)}" if settings.database_url else "SQLite",
        "webhook_url": _without_secrets(settings.webhook_url) if settings.webhook_url else None,
        "webhook_signed": bool(settings.webhook_secret),
        "api_key": f"in {settings.api_key_file}" if settings.api_key_file else "API_KEY from the environment",
    }


def _without_secrets(url: str) -> str:
    """A URL fit for a log line: no userinfo, no query (either may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class GatewayServer(uvicorn.Server):
    """uvicorn's server, logging "started" once the port is bound and the app is up."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info("gateway.started", **started_fields(self.settings.with_api_key()))


def raise_open_files_limit() -> None:
    """Every WebSocket client and device holds descriptors; the usual soft limit of 1024 is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


MIN_KEY_LENGTH = 24


def warn_weak_key(settings: Settings) -> bool:
    """A warning line when API_KEY is set but short (a generated key is 47 characters). The admin
    key opens everything, and every address may try 600 keys a minute."""
    if settings.api_key and len(settings.api_key) < MIN_KEY_LENGTH:
        structlog.get_logger("gateway").warning(
            "api_key.weak",
            length=len(settings.api_key),
            advice=f"use at least {MIN_KEY_LENGTH} random characters, or unset API_KEY to have one generated",
        )
        return True
    return False


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings: the guarded httptools protocol (head size, head deadline, connection bound,
    see :mod:`gateway.server`) and WebSocket frames capped at the application's own limit."""
    limits = ConnectionLimits(
        max_header_bytes=MAX_HEADER_BYTES,
        header_timeout_s=settings.header_timeout_ms / 1000,
        max_connections=settings.max_connections,
    )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(limits),
        ws="websockets-sansio",
        ws_max_size=WS_MAX_FRAME,
        # Frames are small JSON: per-message deflate saves little on them, yet costs a zlib stream per
        # listener (hundreds of KiB, and a compression per frame per listener in a fan-out).
        ws_per_message_deflate=False,
        lifespan="on",
        access_log=False,
        log_level="warning",
        # In-flight requests get 3 s; devices (2.5 s) and the dispatcher (3.5 s) follow: < 10 s in all.
        timeout_graceful_shutdown=3,
        server_header=False,
        # X-Forwarded-For/-Proto are applied by the app itself (gateway.app), from TRUSTED_PROXIES only.
        proxy_headers=False,
    )


async def serve(settings: Settings, sock: socket.socket) -> int:
    from gateway.app import create_app

    warn_weak_key(settings)
    app = create_app(settings)
    config = server_config(app, settings)
    server = GatewayServer(config, settings)
    # Our own handlers: uvicorn's would re-raise the signal after shutdown.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    await server.serve(sockets=[sock])
    # A server that never started (port in use, lifespan failure) is an error.
    return 0 if server.started else 1


if __name__ == "__main__":
    main()
