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


def test_lazy_data_is_built_only_when_a_frame_will_be_sent() -> None:
    """A message's status frames: built for a listener of the device, a wildcard listener or the
    bus's relay, never when no one would receive them (still counted as published)."""
    hub = Hub()
    built: list[str] = []

    def build(tag: str) -> object:
        built.append(tag)
        return {"status": tag}

    hub.publish_lazy("message.status", "a", lambda: build("nobody"))
    assert built == [] and hub.published == 1
    other = Client(None, True)
    hub.attach(other)
    hub.resubscribe(other, None, ["b"])
    hub.publish_lazy("message.status", "a", lambda: build("someone else's device"))
    assert built == []
    mine = Client(None, True)
    hub.attach(mine)
    hub.resubscribe(mine, None, ["a"])
    hub.publish_lazy("message.status", "a", lambda: build("listened"))
    assert built == ["listened"] and [f["data"] for f in drain(mine)] == [{"status": "listened"}]
    hub.detach(mine)
    relayed: list[str] = []
    hub.relay = lambda ev: relayed.append(ev.event)
    hub.publish_lazy("message.status", "a", lambda: build("relayed"))
    assert built == ["listened", "relayed"] and relayed == ["message.status"]
    assert hub.published == 4


def test_publish_each_builds_each_frame_only_when_someone_listens() -> None:
    hub = Hub()
    built: list[int] = []

    def build(n: int) -> dict[str, int]:
        built.append(n)
        return {"n": n}

    hub.publish_each("message.status", "a", [1, 2, 3], build)
    assert built == [] and hub.published == 3
    mine = Client(None, True)
    hub.attach(mine)
    hub.resubscribe(mine, None, ["a"])
    hub.publish_each("message.status", "b", [4], build)  # another device's: nobody here listens
    assert built == [] and hub.published == 4
    hub.publish_each("message.status", "a", [5, 6], build)
    assert built == [5, 6] and [f["data"] for f in drain(mine)] == [{"n": 5}, {"n": 6}]
    assert hub.published == 6
