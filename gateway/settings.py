"""Typed, frozen settings read once from the environment (and ``.env``).

Nothing else in the gateway reads ``os.environ``. A bad value raises
:class:`SettingsError` naming the variable; ``python -m gateway`` turns it into
one line on stderr and exit code 2.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

DRIVERS = ("neonize", "sandbox")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("console", "json")


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4010
    api_key: str = ""
    api_key_file: Path | None = None  # where a generated key lives (never logged)
    data_dir: Path = Path("sessions")
    media_dir: Path | None = (
        None  # MEDIA_DIR: the media files (default $DATA_DIR/media); one shared volume in a cluster
    )
    database_url: str | None = None  # postgresql://…: the store on PostgreSQL (None: SQLite under data_dir)
    bus_url: str | None = None  # nats://…: with database_url, this process is one node of a cluster (CONTRACT §14)
    node_id: str = ""  # this node's name in the cluster (default: host name + random suffix)
    lease_ttl_s: int = 15  # a node silent this long loses its devices to the others
    wa_driver: str = "neonize"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_events: frozenset[str] | None = None  # None = all
    webhook_max_attempts: int = 10
    webhook_retry_base_ms: int = 1000
    webhook_retry_max_ms: int = 3_600_000
    webhook_timeout_ms: int = 10_000
    webhook_concurrency: int = 64
    webhook_origin_concurrency: int = 8
    webhook_retention_hours: int = 168
    message_retention_days: int = 30
    webhook_allow_private: bool = False
    typing_delay_ms: int = 0
    default_country_code: str = "60"
    phone_cache_ttl_s: int = 3600
    phone_cache_size: int = 100_000
    rate_limit_per_minute: int = 600
    log_level: str = "info"
    log_format: str = "json"
    cors_origins: tuple[str, ...] = ()
    allow_signup: bool = False
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    reconnect_base_ms: int = 100
    reconnect_max_ms: int = 60_000
    connect_timeout_ms: int = 15_000
    ws_queue_size: int = 1024
    max_connections: int = 10_000
    header_timeout_ms: int = 10_000
    account_max_devices: int = 10
    neonize_proxy: str | None = None
    neonize_connect_timeout_s: int = 8
    sandbox_qr_interval_ms: int = 20_000
    sandbox_receipt_delay_ms: int = 200
    sandbox_reconnect_ms: int = 500
    media_max_bytes: int = 64 * 1024 * 1024
    media_fetch_timeout_ms: int = 30_000
    media_fetch_allow_private: bool = False
    media_retention_hours: int = 168
    media_max_total_mb: int = 10_240
    media_url_ttl_s: int = 86_400
    public_url: str | None = None  # None: http://HOST:PORT
    media_auto_download: bool = True
    media_convert_concurrency: int = 2
    media_convert_timeout_s: int = 120
    campaign_clock_scale: float = 1.0  # tests and benchmarks only: campaigns' time runs this much faster
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
        """Build settings from ``env`` (default: ``os.environ`` over ``./.env``)."""
        if env is None:
            merged: dict[str, str] = {}
            if dotenv and Path(".env").is_file():
                from dotenv import dotenv_values

                merged.update({k: v for k, v in dotenv_values(".env").items() if v is not None})
            merged.update(os.environ)
            env = merged
        r = _Reader(env)
        tty = sys.stderr.isatty()
        settings = cls(
            host=r.text("HOST", "127.0.0.1"),
            port=r.integer("PORT", 4010, lo=1, hi=65535),
            api_key=r.text("API_KEY", ""),
            data_dir=Path(r.text("DATA_DIR", "./sessions")),
            media_dir=Path(r.text("MEDIA_DIR", "")) if r.text("MEDIA_DIR", "") else None,
            database_url=r.database_url("DATABASE_URL"),
            bus_url=r.bus_url("BUS_URL"),
            node_id=r.node_id("NODE_ID"),
            lease_ttl_s=r.integer("LEASE_TTL_S", 15, lo=2, hi=3600),
            wa_driver=r.choice("WA_DRIVER", "neonize", DRIVERS),
            webhook_url=r.url("WEBHOOK_URL"),
            webhook_secret=r.text("WEBHOOK_SECRET", "") or None,
            webhook_events=r.events("WEBHOOK_EVENTS"),
            webhook_max_attempts=r.integer("WEBHOOK_MAX_ATTEMPTS", 10, lo=1, hi=1000),
            webhook_retry_base_ms=r.integer("WEBHOOK_RETRY_BASE_MS", 1000, lo=1),
            webhook_retry_max_ms=r.integer("WEBHOOK_RETRY_MAX_MS", 3_600_000, lo=1),
            webhook_timeout_ms=r.integer("WEBHOOK_TIMEOUT_MS", 10_000, lo=1),
            webhook_concurrency=r.integer("WEBHOOK_CONCURRENCY", 64, lo=1, hi=10_000),
            webhook_origin_concurrency=r.integer("WEBHOOK_ORIGIN_CONCURRENCY", 8, lo=1, hi=10_000),
            webhook_retention_hours=r.integer("WEBHOOK_RETENTION_HOURS", 168, lo=0),
            message_retention_days=r.integer("MESSAGE_RETENTION_DAYS", 30, lo=0, hi=36_500),
            webhook_allow_private=r.boolean("WEBHOOK_ALLOW_PRIVATE", False),
            typing_delay_ms=r.integer("TYPING_DELAY_MS", 0, lo=0, hi=60_000),
            default_country_code=r.digits("DEFAULT_COUNTRY_CODE", "60"),
            phone_cache_ttl_s=r.integer("PHONE_CACHE_TTL_S", 3600, lo=0),
            phone_cache_size=r.integer("PHONE_CACHE_SIZE", 100_000, lo=1),
            rate_limit_per_minute=r.integer("RATE_LIMIT_PER_MINUTE", 600, lo=0),
            log_level=r.choice("LOG_LEVEL", "info", LOG_LEVELS),
            log_format=r.choice("LOG_FORMAT", "console" if tty else "json", LOG_FORMATS),
            cors_origins=r.items("CORS_ORIGINS"),
            allow_signup=r.boolean("ALLOW_SIGNUP", False),
            trusted_proxies=r.items("TRUSTED_PROXIES") or ("127.0.0.1", "::1"),
            reconnect_base_ms=r.integer("RECONNECT_BASE_MS", 100, lo=1),
            reconnect_max_ms=r.integer("RECONNECT_MAX_MS", 60_000, lo=1),
            connect_timeout_ms=r.integer("CONNECT_TIMEOUT_MS", 15_000, lo=100),
            ws_queue_size=r.integer("WS_QUEUE_SIZE", 1024, lo=1, hi=1_000_000),
            max_connections=r.integer("MAX_CONNECTIONS", 10_000, lo=1, hi=1_000_000),
            header_timeout_ms=r.integer("HEADER_TIMEOUT_MS", 10_000, lo=50, hi=600_000),
            account_max_devices=r.integer("ACCOUNT_MAX_DEVICES", 10, lo=0),
            neonize_proxy=r.text("NEONIZE_PROXY", "") or None,
            neonize_connect_timeout_s=r.integer("NEONIZE_CONNECT_TIMEOUT_S", 8, lo=1, hi=120),
            sandbox_qr_interval_ms=r.integer("SANDBOX_QR_INTERVAL_MS", 20_000, lo=50),
            sandbox_receipt_delay_ms=r.integer("SANDBOX_RECEIPT_DELAY_MS", 200, lo=0),
            sandbox_reconnect_ms=r.integer("SANDBOX_RECONNECT_MS", 500, lo=10),
            media_max_bytes=r.integer("MEDIA_MAX_BYTES", 64 * 1024 * 1024, lo=1024, hi=2**40),
            media_fetch_timeout_ms=r.integer("MEDIA_FETCH_TIMEOUT_MS", 30_000, lo=100),
            media_fetch_allow_private=r.boolean("MEDIA_FETCH_ALLOW_PRIVATE", False),
            media_retention_hours=r.integer("MEDIA_RETENTION_HOURS", 168, lo=1),
            media_max_total_mb=r.integer("MEDIA_MAX_TOTAL_MB", 10_240, lo=1),
            media_url_ttl_s=r.integer("MEDIA_URL_TTL_S", 86_400, lo=1),
            public_url=(r.url("PUBLIC_URL") or "").rstrip("/") or None,
            media_auto_download=r.boolean("MEDIA_AUTO_DOWNLOAD", True),
            media_convert_concurrency=r.integer("MEDIA_CONVERT_CONCURRENCY", 2, lo=1, hi=64),
            media_convert_timeout_s=r.integer("MEDIA_CONVERT_TIMEOUT_S", 120, lo=1, hi=3600),
            campaign_clock_scale=float(r.integer("CAMPAIGN_CLOCK_SCALE", 1, lo=1, hi=10_000)),
        )
        if settings.cluster and not settings.api_key:
            # Every node must accept the same key: a key generated per node would lock clients out of the others.
            raise SettingsError("API_KEY must be set in cluster mode (DATABASE_URL and BUS_URL both set)")
        if settings.connect_timeout_ms < settings.neonize_connect_timeout_s * 1000:
            raise SettingsError("CONNECT_TIMEOUT_MS must be >= NEONIZE_CONNECT_TIMEOUT_S (in ms)")
        if settings.webhook_retry_max_ms < settings.webhook_retry_base_ms:
            raise SettingsError("WEBHOOK_RETRY_MAX_MS must be >= WEBHOOK_RETRY_BASE_MS")
        if settings.webhook_secret and settings.webhook_secret.startswith("whsec_"):
            try:  # decoded as the signer (and the standardwebhooks libraries) will
                key = base64.b64decode(settings.webhook_secret[6:] + "==")
            except ValueError:
                key = b""
            if not key:
                raise SettingsError("WEBHOOK_SECRET: a whsec_ secret must be base64 after the prefix")
        return settings

    @property
    def media_root(self) -> Path:
        """Where media files live: MEDIA_DIR, else ``$DATA_DIR/media``."""
        return self.media_dir if self.media_dir is not None else self.data_dir / "media"

    @property
    def cluster(self) -> bool:
        """One node of a cluster (CONTRACT §14): the store on PostgreSQL and a bus to the other nodes."""
        return self.database_url is not None and self.bus_url is not None

    @property
    def base_url(self) -> str:
        """Where clients reach this gateway: PUBLIC_URL, else ``http://HOST:PORT``."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def with_api_key(self) -> Settings:
        """Return settings whose ``api_key`` is set: generated and saved on first start."""
        if self.api_key:
            return self
        path = self.data_dir / "api_key"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            key = path.read_text().strip()
            if key:
                return replace(self, api_key=key, api_key_file=path)
        key = "wag_" + secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        os.chmod(path, 0o600)
        return replace(self, api_key=key, api_key_file=path)


WEBHOOK_EVENT_NAMES = frozenset(
    {
        "device.connected",
        "device.disconnected",
        "device.logged_out",
        "message.received",
        "message.sent",
        "message.receipt",
        "message.status",
        "message.edited",
        "message.revoked",
        "message.reaction",
        "contacts.new",
        "contacts.sync",
        "campaign",
    }
)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _get(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def _parse(self, name: str, default: T, conv: Callable[[str], T]) -> T:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            return conv(raw)
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"{name}: {exc}") from exc

    def text(self, name: str, default: str) -> str:
        return self._get(name) or default

    def integer(self, name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        def conv(raw: str) -> int:
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{raw!r} is not a whole number") from None
            if lo is not None and value < lo:
                raise ValueError(f"{value} is below the minimum {lo}")
            if hi is not None and value > hi:
                raise ValueError(f"{value} is above the maximum {hi}")
            return value

        return self._parse(name, default, conv)

    def boolean(self, name: str, default: bool) -> bool:
        def conv(raw: str) -> bool:
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{raw!r} is not a boolean (true/false)")

        return self._parse(name, default, conv)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        def conv(raw: str) -> str:
            low = raw.lower()
            if low not in choices:
                raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
            return low

        return self._parse(name, default, conv)

    def digits(self, name: str, default: str) -> str:
        def conv(raw: str) -> str:
            raw = raw.lstrip("+")
            if not raw.isdigit() or len(raw) > 4:
                raise ValueError(f"{raw!r} is not a country calling code")
            return raw

        return self._parse(name, default, conv)

    def url(self, name: str) -> str | None:
        def conv(raw: str) -> str:
            if not raw.startswith(("http://", "https://")):
                raise ValueError(f"{raw!r} is not an http(s) URL")
            return raw

        return self._parse(name, None, conv)

    def database_url(self, name: str) -> str | None:
        """A ``postgresql://`` (or ``postgres://``) URL with a host or a database. Anything else is refused:
        a keyword-style string (``host=… dbname=…``) would be taken by neonize for a SQLite file name.
        The value is never echoed (it may hold a password)."""
        raw = self._get(name)
        if raw is None:
            return None
        try:
            parts = urlsplit(raw)
            ok = parts.scheme in ("postgresql", "postgres") and bool(parts.netloc or parts.path.strip("/"))
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            ok = False
        if not ok:
            raise SettingsError(
                f"{name} must be a URL like postgresql://user:password@host:5432/database "
                "(keyword strings such as 'host=… dbname=…' and other schemes are not accepted)"
            )
        return raw

    def bus_url(self, name: str) -> str | None:
        def conv(raw: str) -> str:
            for part in raw.split(","):  # a comma list: a NATS cluster's seeds
                parts = urlsplit(part.strip())
                if parts.scheme not in ("nats", "tls") or not parts.hostname:
                    raise ValueError("must be a URL like nats://host:4222")
                parts.port  # noqa: B018 - raises ValueError on a port that is not a number
            return raw

        return self._parse(name, None, conv)

    def node_id(self, name: str) -> str:
        def conv(raw: str) -> str:
            if len(raw) > 64 or not all(c.isalnum() or c in "-_." for c in raw):
                raise ValueError(f"{raw!r} must be 1-64 letters, digits, '-', '_' or '.'")
            return raw

        default = f"{socket.gethostname()[:40]}-{secrets.token_hex(3)}"
        return self._parse(name, default, conv)

    def items(self, name: str) -> tuple[Any, ...]:
        raw = self._get(name)
        return tuple(p.strip() for p in raw.split(",") if p.strip()) if raw else ()

    def events(self, name: str) -> frozenset[str] | None:
        def conv(raw: str) -> frozenset[str] | None:
            names = {p.strip() for p in raw.split(",") if p.strip()}
            if not names or names & {"*", "all"}:
                return None
            unknown = names - WEBHOOK_EVENT_NAMES
            if unknown:
                raise ValueError(f"unknown event(s) {', '.join(sorted(unknown))}")
            return frozenset(names)

        return self._parse(name, None, conv)
