"""The Campaigns section of the console (issue 16): create a campaign from a CSV file, watch its progress
move live over the WebSocket, pause and resume it. Photographed at desktop and phone widths, light and dark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from .conftest import DESKTOP, GatewayProcess
from .test_operator_console import connected_device, snap_variants
from .test_pairing_page import sign_in

pytestmark = pytest.mark.browser

TOKEN = "60123456789"


async def test_create_from_a_csv_watch_progress_pause_and_resume(
    spawn_gateway: Callable[..., GatewayProcess], new_page: Any, tmp_path: Path
) -> None:
    # perMinute 1 on a 20x clock: a 3 s gap, the first send at once (slow enough to pause in between). The
    # warm-up widens the first gap to 3x and jitter adds up to 30%: the second (last) send may come 11.7 s
    # of real time after the first, hence the long wait for "completed" below.
    gw = spawn_gateway(CAMPAIGN_CLOCK_SCALE="20", SANDBOX_RECEIPT_DELAY_MS="20")
    async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=10) as api:
        await connected_device(api, TOKEN, "Front desk")
    people = tmp_path / "people.csv"
    people.write_text("phone,name,city\n60198765432,Aisyah,Ipoh\n60171222333,Ben,Kuching\nnope,X,Y\n")

    page = await new_page(DESKTOP)
    await sign_in(page, gw)
    await page.get_by_role("link", name="Campaigns").click()
    await expect(page).to_have_url(f"{gw.base_url}/#/campaigns")
    await expect(page.locator("#cmp-rows")).to_contain_text("No campaigns yet.")

    form = page.get_by_role("form", name="New campaign")
    await form.get_by_label("Send from device").select_option(TOKEN)
    await form.get_by_label("Campaign name").fill("Spring promo")
    await form.get_by_label("Recipients CSV").set_input_files(str(people))
    await form.get_by_label("Messages per minute").fill("1")
    await form.get_by_label("Campaign message").fill("Hi {{name}}, see you in {{city}}")
    await form.get_by_role("button", name="Create campaign").click()
    await expect(page.locator("#cmp-result")).to_contain_text("3 recipients, 1 skipped")

    row = page.locator("#cmp-rows tr", has_text="Spring promo")
    await expect(row.locator("[data-role=status]")).to_have_text("running")
    # Live: the first send's progress arrives as a `campaign` frame, no reload.
    await expect(row.locator("[data-role=sent]")).to_have_text("1", timeout=10_000)
    await snap_variants(page, "campaigns-running")

    await row.get_by_role("button", name="Pause Spring promo").click()
    await expect(row.locator("[data-role=status]")).to_have_text("paused")
    await expect(row.get_by_role("button", name="Resume Spring promo")).to_be_visible()
    await snap_variants(page, "campaigns-paused")
    await row.get_by_role("button", name="Resume Spring promo").click()
    await expect(row.locator("[data-role=status]")).to_have_text("running")
    await expect(row.locator("[data-role=status]")).to_have_text("completed", timeout=30_000)
    await expect(row.locator("[data-role=sent]")).to_have_text("2")
    await snap_variants(page, "campaigns-completed")

    async with httpx.AsyncClient(base_url=gw.base_url, headers=gw.headers, timeout=10) as api:
        sent = (await api.get(f"/sandbox/devices/{TOKEN}/sent")).json()["data"]["messages"]
    assert sorted(m["text"] for m in sent) == ["Hi Aisyah, see you in Ipoh", "Hi Ben, see you in Kuching"]
