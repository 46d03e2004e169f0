"""The collector's settings for serving are applied when the app starts (gateway/collector.py)."""

from __future__ import annotations

import gc
from pathlib import Path

from gateway import collector
from gateway.app import create_app
from tests.support.asgi import lifespan
from tests.support.settings import make_settings


async def test_the_app_applies_the_serving_thresholds_and_freezes_start_up(tmp_path: Path) -> None:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    try:
        async with lifespan(create_app(make_settings(tmp_path))):
            assert gc.get_threshold() == collector.THRESHOLDS
            assert gc.get_freeze_count() > 0  # start-up's objects are out of every pass
    finally:
        gc.set_threshold(*before)


def test_tuning_twice_freezes_once() -> None:
    collector.tune_for_serving()
    frozen = gc.get_freeze_count()
    young = [[] for _ in range(10)]  # tracked containers a second freeze would pin
    collector.tune_for_serving()
    assert gc.get_freeze_count() == frozen
    assert young
    assert gc.get_threshold() == collector.THRESHOLDS
