"""Settings: defaults, validation (one line naming the variable), the generated API key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError


def test_defaults_match_the_contract() -> None:
    """An empty environment gives the contract's defaults."""
    s = Settings.from_env({}, dotenv=False)
    assert (s.host, s.port, s.wa_driver) == ("127.0.0.1", 4010, "neonize")
    assert s.data_dir == Path("sessions")
    assert (s.webhook_max_attempts, s.webhook_retry_base_ms, s.webhook_retry_max_ms) == (10, 1000, 3_600_000)
    assert (s.webhook_timeout_ms, s.typing_delay_ms, s.default_country_code) == (10_000, 0, "60")
    assert (s.phone_cache_ttl_s, s.phone_cache_size, s.rate_limit_per_minute) == (3600, 100_000, 600)
    assert s.webhook_events is None and s.webhook_url is None and s.cors_origins == ()
    assert s.database_url is None  # SQLite under DATA_DIR


def test_database_url_takes_postgresql_urls() -> None:
    for url in ("postgresql://gw:pw@db:5432/gw?sslmode=disable", "postgres://db/gw", "postgresql:///gw"):
        assert Settings.from_env({"DATABASE_URL": url}, dotenv=False).database_url == url


def test_cluster_mode_needs_both_urls_and_an_api_key() -> None:
    """CONTRACT §14: cluster mode is DATABASE_URL + BUS_URL; alone, each leaves the single-node default."""
    single = Settings.from_env({}, dotenv=False)
    assert not single.cluster and single.bus_url is None and single.lease_ttl_s == 15
    assert single.node_id and single.node_id != Settings.from_env({}, dotenv=False).node_id  # random suffix
    assert not Settings.from_env({"DATABASE_URL": "postgresql://db/gw"}, dotenv=False).cluster
    assert not Settings.from_env({"BUS_URL": "nats://bus:4222"}, dotenv=False).cluster
    env = {
        "DATABASE_URL": "postgresql://db/gw",
        "BUS_URL": "nats://bus:4222",
        "API_KEY": "k",
        "NODE_ID": "node-1",
        "LEASE_TTL_S": "6",
    }
    s = Settings.from_env(env, dotenv=False)
    assert s.cluster and (s.node_id, s.lease_ttl_s, s.bus_url) == ("node-1", 6, "nats://bus:4222")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"PORT": "70000"}, "PORT"),
        ({"PORT": "abc"}, "PORT"),
        ({"WA_DRIVER": "selenium"}, "WA_DRIVER"),
        ({"PHONE_CACHE_TTL_S": "-1"}, "PHONE_CACHE_TTL_S"),
        ({"WEBHOOK_URL": "ftp://x"}, "WEBHOOK_URL"),
        ({"WEBHOOK_EVENTS": "message.received,nope"}, "WEBHOOK_EVENTS"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"ALLOW_SIGNUP": "maybe"}, "ALLOW_SIGNUP"),
        ({"DEFAULT_COUNTRY_CODE": "6x"}, "DEFAULT_COUNTRY_CODE"),
        ({"DATABASE_URL": "host=db dbname=gw"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://db/gw"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://db:port/gw"}, "DATABASE_URL"),
        ({"BUS_URL": "http://nats:4222"}, "BUS_URL"),
        ({"BUS_URL": "nats://"}, "BUS_URL"),
        ({"NODE_ID": "a b"}, "NODE_ID"),
        ({"NODE_ID": "x" * 65}, "NODE_ID"),
        ({"LEASE_TTL_S": "1"}, "LEASE_TTL_S"),
        ({"DATABASE_URL": "postgresql://db/gw", "BUS_URL": "nats://bus:4222"}, "API_KEY"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    """Each bad value raises SettingsError whose message starts with the variable's name."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env, dotenv=False)
    assert str(info.value).startswith(name)


def test_lists_and_event_filters_are_parsed() -> None:
    """Comma lists are trimmed; WEBHOOK_EVENTS becomes a set of known names."""
    s = Settings.from_env(
        {"CORS_ORIGINS": "http://a, http://b", "WEBHOOK_EVENTS": "message.received, device.connected"},
        dotenv=False,
    )
    assert s.cors_origins == ("http://a", "http://b")
    assert s.webhook_events == frozenset({"message.received", "device.connected"})


def test_generated_api_key_is_saved_0600_and_reused(tmp_path: Path) -> None:
    """No API_KEY: a key is generated into DATA_DIR/api_key (mode 0600) and read back next time."""
    s = Settings.from_env({"DATA_DIR": str(tmp_path)}, dotenv=False).with_api_key()
    path = tmp_path / "api_key"
    assert s.api_key and s.api_key_file == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Settings.from_env({"DATA_DIR": str(tmp_path)}, dotenv=False).with_api_key()
    assert again.api_key == s.api_key


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .env in the working directory supplies values; the environment wins over it."""
    (tmp_path / ".env").write_text("PORT=4555\nTYPING_DELAY_MS=25\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TYPING_DELAY_MS", "5")
    monkeypatch.delenv("PORT", raising=False)
    s = Settings.from_env()
    assert s.port == 4555 and s.typing_delay_ms == 5


def test_env_example_lists_every_variable() -> None:
    """config/.env.example names exactly the variables Settings reads, and parses as valid settings."""
    import re

    root = Path(__file__).resolve().parent.parent
    source = (root / "gateway" / "settings.py").read_text()
    read = set(re.findall(r'r\.\w+\("([A-Z_]+)"', source))
    example = (root / "config" / ".env.example").read_text()
    listed = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    assert set(listed) == read
    Settings.from_env(listed, dotenv=False)


def test_bus_url_takes_a_list_of_nats_servers() -> None:
    """BUS_URL may name several NATS servers (a NATS cluster's seeds); each must be a nats:// or tls:// URL."""
    urls = "nats://n1:4222, nats://n2:4222,tls://n3:4443"
    assert Settings.from_env({"BUS_URL": urls}, dotenv=False).bus_url == urls
    for bad in ("nats://n1:4222,http://n2:4222", "nats://n1:4222,nats://:4222", "nats://n1:x"):
        with pytest.raises(SettingsError, match=r"^BUS_URL"):
            Settings.from_env({"BUS_URL": bad}, dotenv=False)
