"""The gateway settings a test starts from."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.settings import Settings
from tests.support.constants import API_KEY
from tests.support.net import HOST, free_port


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Sandbox driver, rate limit off, JSON logs, fast receipts, on ``data_dir``."""
    base = Settings(
        host=HOST,
        port=free_port(),
        api_key=API_KEY,
        data_dir=data_dir,
        wa_driver="sandbox",
        rate_limit_per_minute=0,
        log_format="json",
        sandbox_receipt_delay_ms=20,
    )
    return replace(base, **overrides)
