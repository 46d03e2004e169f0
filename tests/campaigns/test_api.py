"""Campaigns through the HTTP API on the sandbox (CONTRACT §13), on a fast clock (CAMPAIGN_CLOCK_SCALE)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest

from gateway.drivers.base import OutgoingMessage
from gateway.drivers.sandbox import SandboxDriver
from gateway.ids import message_id as new_message_id
from gateway.store.campaigns import mark_sending_sync
from tests.media.samples import png
from tests.support.accounts import Tenants
from tests.support.constants import OTHER, TOKEN
from tests.support.errors import assert_error
from tests.support.gateway import Gateway

FAST = 1000  # the campaigns' clock runs 1000x: 60/min is a send per millisecond
PEOPLE = ["60198765432", "60171222333", "60123400001", "60123400002", "60123400003"]
NOT_ON_WA = "60123400010"  # the sandbox: a number ending in 0 is not on WhatsApp


async def start(gateway_factory: Callable[..., Any], **kw: Any) -> Gateway:
    gw: Gateway = await gateway_factory(campaign_clock_scale=kw.pop("scale", FAST), **kw)
    await gw.pair()
    return gw


async def create(gw: Gateway, code: int = 201, http: Any = None, **body: Any) -> Any:
    payload = {"token": TOKEN, "name": "spring", "message": {"text": "Hi {{name}}"}, "pace": {"perMinute": 60}}
    payload.update(body)
    r = await (http or gw.http).post("/campaigns", json=payload)
    assert r.status_code == code, r.text
    if code == 201:
        return r.json()["data"]
    assert_error(r, code, r.json()["error"]["code"])  # the contract's envelope, whatever the code
    return r.json()["error"]["code"]


async def campaign(gw: Gateway, cid: str) -> dict[str, Any]:
    r = await gw.http.get(f"/campaigns/{cid}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def until_status(gw: Gateway, cid: str, *statuses: str, **counts: int) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        c = await campaign(gw, cid)
        ok = c["status"] in statuses and all(c[k] >= v for k, v in counts.items())
        return c if ok else None

    result: dict[str, Any] = await gw.until(check, timeout=10)
    return result


async def sent(gw: Gateway) -> list[dict[str, Any]]:
    r = await gw.http.get(f"/sandbox/devices/{TOKEN}/sent")
    messages: list[dict[str, Any]] = r.json()["data"]["messages"]
    return messages


async def test_a_campaign_sends_each_recipient_once_personalised_and_counts_the_rest(
    gateway_factory: Callable[..., Any],
) -> None:
    """Invalid and duplicate numbers are skipped and counted; receipts move sent → delivered → read."""
    gw = await start(gateway_factory)
    people = [{"phone": p, "name": f"N{i}"} for i, p in enumerate(PEOPLE)]
    people += [{"phone": "12345"}, {"phone": PEOPLE[0], "name": "again"}, {"phone": NOT_ON_WA}]
    c = await create(gw, recipients=people)
    assert c["total"] == 8 and c["skipped"] == 2 and c["status"] == "running"
    done = await until_status(gw, c["id"], "completed", read=5)
    assert (done["sent"], done["delivered"], done["read"], done["failed"], done["skipped"]) == (5, 5, 5, 0, 3)
    out = await sent(gw)
    assert sorted(m["to"] for m in out) == sorted(f"{p}@s.whatsapp.net" for p in PEOPLE)
    assert {m["text"] for m in out} == {f"Hi N{i}" for i in range(5)}
    r = await gw.http.get(f"/campaigns/{c['id']}/recipients", params={"status": "skipped"})
    reasons = {x["phone"]: x["reason"] for x in r.json()["data"]["recipients"]}
    assert reasons == {"12345": "invalid_phone", PEOPLE[0]: "duplicate", NOT_ON_WA: "not_on_whatsapp"}
    # The message store has them too, and the campaign's ids are the messages' ids.
    r = await gw.http.get(f"/campaigns/{c['id']}/recipients", params={"status": "read"})
    ids = {x["messageId"] for x in r.json()["data"]["recipients"]}
    assert ids == {m["id"] for m in out}


async def test_a_csv_upload_gives_recipients_and_template_columns(gateway_factory: Callable[..., Any]) -> None:
    gw = await start(gateway_factory)
    text = "Phone;Name;City\n+60 19-876 5432;Aisyah;Ipoh\n60171222333;Ben;Kuching\nnot-a-number;X;Y\n"
    r = await gw.http.post("/media?filename=people.csv", content=text.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    upload = r.json()["data"]["id"]
    c = await create(gw, recipientsCsv=upload, message={"text": "{{name}} from {{City}}"}, validate=False)
    assert (c["total"], c["pending"], c["skipped"]) == (3, 2, 1)
    await until_status(gw, c["id"], "completed")
    assert sorted(m["text"] for m in await sent(gw)) == ["Aisyah from Ipoh", "Ben from Kuching"]
    r = await gw.http.get(f"/campaigns/{c['id']}/recipients", params={"format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["status"] for x in rows][2] == "skipped"
    assert {x["phone"] for x in rows[:2]} == {"60198765432", "60171222333"}
    assert all(x["status"] in ("sent", "delivered", "read") for x in rows[:2])


async def test_the_devices_captured_contacts_can_be_the_recipients(gateway_factory: Callable[..., Any]) -> None:
    gw = await start(gateway_factory)
    await gw.post(f"/sandbox/devices/{TOKEN}/history", {"contacts": [{"phone": p, "name": "C"} for p in PEOPLE[:3]]})

    async def stored() -> bool:
        r = await gw.http.get(f"/contacts/{TOKEN}")
        return bool(r.json()["data"]["total"] == 3)

    await gw.until(stored)
    c = await create(gw, contactsSource="all")
    assert c["total"] == 3
    await until_status(gw, c["id"], "completed")
    assert len(await sent(gw)) == 3


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"pace": {"perMinute": 0}}, "INVALID_REQUEST"),
        ({"pace": {"perMinute": 1000}}, "INVALID_REQUEST"),
        ({"recipients": []}, "INVALID_REQUEST"),
        ({"startAt": "2020-01-01T00:00:00Z"}, "INVALID_REQUEST"),
        ({"message": {"text": "Hi {{nmae}}"}}, "INVALID_MESSAGE"),
        ({"message": {"media": {"id": "med_doesnotexist"}}}, "INVALID_MEDIA"),
        ({"recipientsCsv": "med_doesnotexist", "recipients": None}, "INVALID_MEDIA"),
        ({"message": {}}, "INVALID_MESSAGE"),
        ({"token": None}, "MISSING_TOKEN"),
        ({"token": "60111111111"}, "INVALID_PHONE"),
        ({"token": "60171222333"}, "DEVICE_NOT_FOUND"),
        ({"recipients": [{"phone": OTHER}], "contactsSource": "all"}, "INVALID_REQUEST"),
        ({"pace": {"quietHours": {"from": "22:00", "to": "08:00", "tz": "Nowhere/Land"}}}, "INVALID_REQUEST"),
        ({"name": ""}, "INVALID_REQUEST"),
    ],
)
async def test_bad_input_is_a_clear_error_and_nothing_is_sent(
    gateway_factory: Callable[..., Any], change: dict[str, Any], code: str
) -> None:
    gw = await start(gateway_factory)
    body = {"recipients": [{"phone": OTHER}], **change}
    body = {k: v for k, v in body.items() if v is not None or k == "token"}
    assert await create(gw, 400 if code not in ("DEVICE_NOT_FOUND",) else 404, **body) == code
    assert (await gw.http.get("/campaigns")).json()["data"]["campaigns"] == []
    assert await sent(gw) == []


async def test_a_csv_without_a_phone_column_and_an_expired_upload_are_refused(
    gateway_factory: Callable[..., Any],
) -> None:
    gw = await start(gateway_factory)
    r = await gw.http.post("/media?filename=x.csv", content=b"mobile,name\n60198765432,A\n")
    upload = r.json()["data"]["id"]
    r = await gw.http.post(
        "/campaigns", json={"token": TOKEN, "name": "x", "message": {"text": "hi"}, "recipientsCsv": upload}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    assert "phone" in r.json()["error"]["message"]
    gw.rt.media.clock = lambda: 4_000_000_000.0  # the upload's retention is long over
    r = await gw.http.post(
        "/campaigns", json={"token": TOKEN, "name": "x", "message": {"text": "hi"}, "recipientsCsv": upload}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_MEDIA"
    assert await sent(gw) == []


async def upload(gw: Gateway, content: bytes, filename: str, mime: str) -> str:
    r = await gw.http.post(f"/media?filename={filename}", content=content, headers={"Content-Type": mime})
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["id"])


async def test_the_bad_input_list_of_the_issue_each_with_its_code(gateway_factory: Callable[..., Any]) -> None:
    """A CSV without a phone column, an unknown template variable (inline and CSV), a perMinute of 0 or
    1,000, an empty list, a startAt in the past, an expired media upload (message and CSV): each refused
    with its code in the contract's envelope, nothing stored, nothing sent."""
    gw = await start(gateway_factory)
    no_phone = await upload(gw, b"mobile,name\n60198765432,A\n", "x.csv", "text/csv")
    people = await upload(gw, b"phone,name,city\n60198765432,A,Ipoh\n", "p.csv", "text/csv")
    image = await upload(gw, png(), "a.png", "image/png")
    base = {"token": TOKEN, "name": "x", "message": {"text": "hi"}, "recipients": [{"phone": OTHER}]}
    csv_body = {k: v for k, v in base.items() if k != "recipients"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**csv_body, "recipientsCsv": no_phone}, 400, "INVALID_REQUEST"),
        ({**base, "message": {"text": "Hi {{nmae}}"}}, 400, "INVALID_MESSAGE"),
        ({**csv_body, "recipientsCsv": people, "message": {"text": "{{name}} of {{town}}"}}, 400, "INVALID_MESSAGE"),
        ({**base, "message": {"media": {"id": image, "caption": "for {{nobody}}"}}}, 400, "INVALID_MESSAGE"),
        ({**base, "pace": {"perMinute": 0}}, 400, "INVALID_REQUEST"),
        ({**base, "pace": {"perMinute": 1000}}, 400, "INVALID_REQUEST"),
        ({**base, "recipients": []}, 400, "INVALID_REQUEST"),
        ({**base, "startAt": "2020-01-01T00:00:00Z"}, 400, "INVALID_REQUEST"),
    ]
    for body, status, code in cases:
        r = await gw.http.post("/campaigns", json=body)
        assert_error(r, status, code)
    gw.rt.media.clock = lambda: 4_000_000_000.0  # every upload's retention is long over
    for body in ({**base, "message": {"media": {"id": image}}}, {**csv_body, "recipientsCsv": people}):
        r = await gw.http.post("/campaigns", json=body)
        assert_error(r, 400, "INVALID_MEDIA")
        assert "expired" in r.json()["error"]["message"]
    assert (await gw.http.get("/campaigns")).json()["data"]["campaigns"] == []
    assert await sent(gw) == []


async def test_a_media_campaign_personalises_each_caption(gateway_factory: Callable[..., Any]) -> None:
    gw = await start(gateway_factory)
    image = await upload(gw, png(), "offer.png", "image/png")
    people = [{"phone": p, "name": f"N{i}"} for i, p in enumerate(PEOPLE[:3])]
    c = await create(gw, recipients=people, message={"media": {"id": image, "caption": "For {{name}} ({{phone}})"}})
    await until_status(gw, c["id"], "completed", sent=3)
    out = await sent(gw)
    assert sorted(m["text"] for m in out) == sorted(f"For N{i} ({p})" for i, p in enumerate(PEOPLE[:3]))
    assert {m["media"]["type"] for m in out} == {"image"} and len({m["media"]["sha256"] for m in out}) == 1


async def test_a_media_upload_that_expires_before_its_sends_fails_the_campaign_with_the_reason(
    gateway_factory: Callable[..., Any],
) -> None:
    """Accepted while the upload was there; it expired while the device was away: nothing is sent, the
    campaign is failed saying why, and its recipients stay pending (not silently skipped)."""
    gw = await start(gateway_factory)
    image = await upload(gw, png(), "offer.png", "image/png")
    await gw.post(f"/devices/{TOKEN}/disconnect")
    c = await create(gw, recipients=[{"phone": p} for p in PEOPLE[:2]], message={"media": {"id": image}})
    gw.rt.media.clock = lambda: 4_000_000_000.0
    await gw.post("/devices", {"token": TOKEN})
    failed = await until_status(gw, c["id"], "failed")
    assert image in failed["error"] and "cannot be sent any more" in failed["error"]
    assert (failed["sent"], failed["pending"]) == (0, 2)
    assert await sent(gw) == []


async def test_pause_resume_and_cancel(gateway_factory: Callable[..., Any]) -> None:
    """perMinute 1 on the real clock: the first goes out, then nothing until a minute has passed."""
    gw = await start(gateway_factory, scale=1)
    c = await create(gw, recipients=[{"phone": p} for p in PEOPLE], validate=False, pace={"perMinute": 1})
    await until_status(gw, c["id"], "running", sent=1)
    running = await campaign(gw, c["id"])
    assert running["etaAt"] is not None and running["etaAt"] > running["startedAt"]
    r = await gw.http.post(f"/campaigns/{c['id']}/pause")
    assert r.json()["data"]["status"] == "paused" and r.json()["data"]["etaAt"] is None
    r = await gw.http.post(f"/campaigns/{c['id']}/resume")
    assert r.json()["data"]["status"] == "running"
    r = await gw.http.post(f"/campaigns/{c['id']}/cancel")
    data = r.json()["data"]
    assert data["status"] == "cancelled" and data["finishedAt"] is not None
    r = await gw.http.post(f"/campaigns/{c['id']}/resume")
    assert r.status_code == 400 and r.json()["error"]["code"] == "INVALID_REQUEST"
    assert len(await sent(gw)) == 1


async def test_a_scheduled_campaign_waits_for_its_start(gateway_factory: Callable[..., Any]) -> None:
    gw = await start(gateway_factory, scale=1)
    c = await create(gw, recipients=[{"phone": OTHER}], startAt="2099-01-01T00:00:00Z")
    assert c["status"] == "scheduled" and c["startAt"].startswith("2099-01-01") and c["etaAt"] >= c["startAt"]
    assert await sent(gw) == []


async def test_a_disconnected_device_pauses_sending_and_a_logged_out_one_fails_the_campaign(
    gateway_factory: Callable[..., Any],
) -> None:
    gw = await start(gateway_factory)
    await gw.post(f"/devices/{TOKEN}/disconnect")
    c = await create(gw, recipients=[{"phone": p} for p in PEOPLE[:2]], validate=False)
    assert (await campaign(gw, c["id"]))["sent"] == 0
    assert await sent(gw) == []
    await gw.post("/devices", {"token": TOKEN})
    await until_status(gw, c["id"], "completed")
    assert len(await sent(gw)) == 2

    slow = await create(gw, recipients=[{"phone": p} for p in PEOPLE], validate=False, pace={"perMinute": 1})
    await until_status(gw, slow["id"], "running", sent=1)
    await gw.post(f"/sandbox/devices/{TOKEN}/unlink")
    failed = await until_status(gw, slow["id"], "failed")
    assert "logged out" in failed["error"]


async def test_a_recipient_interrupted_mid_send_is_resent_under_its_id_once(
    gateway_factory: Callable[..., Any], tmp_path: Any
) -> None:
    """The crash window: recorded 'sending', received by WhatsApp, not recorded 'sent'. After a restart
    the send is repeated under the same id, which the (simulated) WhatsApp keeps as one message."""
    gw = await start(gateway_factory, data_dir=tmp_path)
    c = await create(gw, recipients=[{"phone": OTHER, "name": "A"}], startAt="2099-01-01T00:00:00Z")
    msg_id = new_message_id()
    await gw.rt.store.db.run(lambda conn: mark_sending_sync(conn, c["id"], 1, msg_id, 0.0))
    await gw.rt.devices.get(TOKEN).driver.send(f"{OTHER}@s.whatsapp.net", OutgoingMessage(text="Hi A", id=msg_id))
    await gw.rt.store.db.execute("UPDATE campaigns SET status = 'running' WHERE id = ?", (c["id"],))
    await gw.stop()
    gw2: Gateway = await gateway_factory(campaign_clock_scale=FAST, data_dir=tmp_path)
    done = await until_status(gw2, c["id"], "completed")
    assert done["sent"] == 1 and done["failed"] == 0
    out = await sent(gw2)
    assert [m["id"] for m in out] == [msg_id]


async def test_without_chosen_ids_an_interrupted_send_is_failed_with_the_reason_not_resent(
    gateway_factory: Callable[..., Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = await start(gateway_factory, data_dir=tmp_path)
    c = await create(gw, recipients=[{"phone": OTHER}, {"phone": PEOPLE[1]}], startAt="2099-01-01T00:00:00Z")
    await gw.rt.store.db.run(lambda conn: mark_sending_sync(conn, c["id"], 1, new_message_id(), 0.0))
    await gw.rt.store.db.execute("UPDATE campaigns SET status = 'running' WHERE id = ?", (c["id"],))
    await gw.stop()
    monkeypatch.setattr(SandboxDriver, "keeps_message_ids", False)  # as neonize 0.5.2
    gw2: Gateway = await gateway_factory(campaign_clock_scale=FAST, data_dir=tmp_path)
    done = await until_status(gw2, c["id"], "completed")
    assert (done["sent"], done["failed"]) == (1, 1)
    r = await gw2.http.get(f"/campaigns/{c['id']}/recipients", params={"status": "failed"})
    assert "interrupted" in r.json()["data"]["recipients"][0]["reason"]
    assert [m["to"] for m in await sent(gw2)] == [f"{PEOPLE[1]}@s.whatsapp.net"]


async def test_another_accounts_campaign_is_not_found(gateway_factory: Callable[..., Any]) -> None:
    gw = await start(gateway_factory)
    c = await create(gw, recipients=[{"phone": OTHER}])
    tenants = Tenants(gw)
    alice = await tenants.signup("alice")
    for method, path in (("get", ""), ("post", "/pause"), ("post", "/cancel"), ("get", "/recipients")):
        r = await alice.http.request(method.upper(), f"/campaigns/{c['id']}{path}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    assert (await alice.http.get("/campaigns")).json()["data"]["campaigns"] == []
    # Nor can she send from the admin's device.
    r = await alice.http.post(
        "/campaigns", json={"token": TOKEN, "name": "x", "message": {"text": "hi"}, "recipients": [{"phone": OTHER}]}
    )
    assert r.json()["error"]["code"] == "DEVICE_NOT_FOUND"
    # Her own device's campaign is hers: she sees it, the admin sees it, bob does not.
    await alice.http.post("/devices", json={"token": PEOPLE[2]})
    await gw.post(f"/sandbox/devices/{PEOPLE[2]}/scan")
    body = {"token": PEOPLE[2], "name": "mine", "message": {"text": "hi"}, "recipients": [{"phone": OTHER}]}
    r = await alice.http.post("/campaigns", json=body)
    assert r.status_code == 201, r.text
    mine = r.json()["data"]["id"]
    assert [x["id"] for x in (await alice.http.get("/campaigns")).json()["data"]["campaigns"]] == [mine]
    assert (await gw.http.get(f"/campaigns/{mine}")).status_code == 200
    bob = await tenants.signup("bob")
    assert (await bob.http.get(f"/campaigns/{mine}")).json()["error"]["code"] == "NOT_FOUND"
    await tenants.aclose()


async def test_a_big_csv_is_stored_in_chunks_and_a_bad_line_late_in_it_leaves_nothing(
    gateway_factory: Callable[..., Any],
) -> None:
    """25,000 rows (three chunks) with repeats and bad numbers are counted right; the same file with a
    bad cell on its last line is refused — after two chunks were stored — and leaves no row behind."""
    gw = await start(gateway_factory)
    lines = ["phone,name"] + [f"6012{i + 1:07d},P{i}" for i in range(25_000)]
    lines[100] = "not-a-phone,X"
    lines[200] = lines[201]  # a repeat
    good = await upload(gw, "\n".join(lines).encode(), "big.csv", "text/csv")
    c = await create(gw, recipientsCsv=good, startAt="2099-01-01T00:00:00Z")
    assert (c["total"], c["pending"], c["skipped"]) == (25_000, 24_998, 2)
    r = await gw.http.get(f"/campaigns/{c['id']}/recipients", params={"status": "skipped"})
    assert [(x["seq"], x["reason"]) for x in r.json()["data"]["recipients"]] == [
        (100, "invalid_phone"),
        (201, "duplicate"),
    ]

    bad = await upload(gw, ("\n".join(lines) + "\n60129999999," + "x" * 5000).encode(), "bad.csv", "text/csv")
    r = await gw.http.post(
        "/campaigns", json={"token": TOKEN, "name": "x", "message": {"text": "hi"}, "recipientsCsv": bad}
    )
    assert_error(r, 400, "INVALID_REQUEST")
    assert "line 25002" in r.json()["error"]["message"]
    assert [x["id"] for x in (await gw.http.get("/campaigns")).json()["data"]["campaigns"]] == [c["id"]]
    row = await gw.rt.store.db.fetchone("SELECT COUNT(*) FROM campaign_recipients")
    assert row is not None and row[0] == 25_000  # only the first campaign's
    assert await sent(gw) == []


async def test_a_create_cut_short_is_invisible_and_gone_after_a_restart(
    gateway_factory: Callable[..., Any], tmp_path: Any
) -> None:
    """The gateway died while storing a campaign's recipients: the half-made campaign is never listed or
    found, never sends, and the next start removes it with its rows."""
    from gateway.store.campaigns import CampaignRow, insert_campaign_sync, insert_recipients_sync

    gw = await start(gateway_factory, data_dir=tmp_path)
    half = CampaignRow(
        id="cmp_half", owner_id=None, token=TOKEN, name="half", message='{"text":"hi"}', pace='{"perMinute":60}',
        validate=False, status="creating", error=None, total=0, pending=0, sent=0, delivered=0, read=0, failed=0,
        skipped=0, created_at=1.0, start_at=None, started_at=None, finished_at=None,
    )  # fmt: skip
    await gw.rt.store.db.run(lambda conn: insert_campaign_sync(conn, half))
    rows = [(1, OTHER, None, None, "pending", None)]
    await gw.rt.store.db.run(lambda conn: insert_recipients_sync(conn, "cmp_half", TOKEN, rows))
    assert (await gw.http.get("/campaigns")).json()["data"]["campaigns"] == []
    assert_error(await gw.http.get("/campaigns/cmp_half"), 404, "NOT_FOUND")
    await gw.stop()
    gw2: Gateway = await gateway_factory(campaign_clock_scale=FAST, data_dir=tmp_path)
    left = await gw2.rt.store.db.fetchone(
        "SELECT (SELECT COUNT(*) FROM campaigns), (SELECT COUNT(*) FROM campaign_recipients)"
    )
    assert left is not None and tuple(left) == (0, 0)
    assert await sent(gw2) == []
