"""The Hub: indexed fan-out, filters, tenant visibility, bounded queues."""

from __future__ import annotations

import orjson

from gateway.events import Client, Hub


def drain(c: Client) -> list[dict[str, object]]:
    out = []
    while not c.queue.empty():
        out.append(orjson.loads(c.queue.get_nowait()))
    return out


def test_token_subscribers_get_only_their_device() -> None:
    """A client subscribed to one token gets that device's events only; a wildcard client gets all."""
    hub = Hub()
    one, everything = Client(None, True), Client(None, True)
    hub.attach(one)
    hub.attach(everything)
    hub.resubscribe(one, None, ["a"])
    hub.publish("message", "a", {"n": 1})
    hub.publish("message", "b", {"n": 2})
    assert [f["token"] for f in drain(one)] == ["a"]
    assert [f["token"] for f in drain(everything)] == ["a", "b"]


def test_event_filter_and_frame_shape() -> None:
    """Event filters apply; frames carry event, token, data, message and timestamp (no nulls)."""
    hub = Hub()
    c = Client(None, True)
    hub.attach(c)
    hub.resubscribe(c, ["connection-error"], None)
    hub.publish("qrcode", "a", "2@x")
    hub.publish("connection-error", "a", None, "Disconnected")
    frames = drain(c)
    assert len(frames) == 1
    assert set(frames[0]) == {"event", "token", "message", "timestamp"}
    assert frames[0]["message"] == "Disconnected"


def test_accounts_see_only_their_devices() -> None:
    """A tenant client never receives another owner's events, even subscribed to the token."""
    hub = Hub()
    tenant = Client(owner_id=1, is_admin=False)
    admin = Client(None, True)
    hub.attach(tenant)
    hub.attach(admin)
    hub.resubscribe(tenant, None, ["a", "b"])
    hub.publish("message", "a", owner_id=1)
    hub.publish("message", "b", owner_id=2)
    assert [f["token"] for f in drain(tenant)] == ["a"]
    assert len(drain(admin)) == 2


def test_full_queue_marks_the_client_slow_without_blocking() -> None:
    """Overflowing a client's queue sets its slow flag; publishing never waits and others still get frames."""
    hub = Hub()
    slow, other = Client(None, True, queue_size=2), Client(None, True, queue_size=100)
    hub.attach(slow)
    hub.attach(other)
    for i in range(5):
        hub.publish("message", "a", {"i": i})
    assert slow.slow.is_set()
    assert len(drain(other)) == 5


def test_detach_and_counts() -> None:
    """Detached clients receive nothing; client_count counts each client once."""
    hub = Hub()
    c = Client(None, True)
    hub.attach(c)
    hub.resubscribe(c, None, ["a", "b"])
    assert hub.client_count == 1
    hub.detach(c)
    hub.publish("message", "a")
    assert hub.client_count == 0 and c.queue.empty()
