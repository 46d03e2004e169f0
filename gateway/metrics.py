"""Prometheus metrics, one registry per app (never the process-global one, so
several gateways in one process — as in the tests — never collide).

Two kinds of values: counters and the latency histogram that move as things
happen (``observe_http``, ``webhook_outcome``), and values read at scrape time
(devices by status, message totals, outbox depth, WebSocket clients,
reconnects) from a snapshot taken just before rendering. The snapshot is built
per scrape, so two concurrent scrapes never share state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.devices import DeviceManager
from gateway.events import Hub
from gateway.store import Store
from gateway.webhooks import Dispatcher

# The classic text format: every Prometheus (and most other scrapers) reads it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed")
OUTBOX_STATUSES = ("pending", "delivered", "failed")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the gateway looks like at one scrape."""

    devices: dict[str, int]
    messages_sent: int
    messages_received: int
    outbox: dict[str, int]
    oldest_pending_age: float  # seconds; 0 when nothing is pending
    ws_clients: int
    reconnects: int
    events_published: int
    webhook_outcomes: dict[str, int]


@dataclass
class _MonotonicSum:
    """A counter fed with per-device totals that may drop (stats reset, device
    deleted): only increases are added, so ``rate()`` never sees a false reset."""

    total: int = 0
    last: dict[str, int] = field(default_factory=dict)

    def update(self, current: dict[str, int]) -> int:
        for token, value in current.items():
            before = self.last.get(token, 0)
            self.total += value - before if value >= before else value
        self.last = dict(current)
        return self.total


class Metrics:
    """The Prometheus registry, the counters fed as things happen, and the sources read at scrape time."""

    def __init__(
        self,
        devices: DeviceManager,
        store: Store,
        hub: Hub,
        dispatcher: Dispatcher,
        clock: Callable[[], float] = time.time,
        node: str | None = None,
    ) -> None:
        self.devices = devices
        self.node = node  # a cluster node's id: on wa_build, so each node's series say whose they are
        self.store = store
        self.hub = hub
        self.dispatcher = dispatcher
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "wa_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "wa_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._outcomes: dict[str, int] = dict.fromkeys(WEBHOOK_OUTCOMES, 0)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._sent = _MonotonicSum()
        self._received = _MonotonicSum()
        # Labelled children by (method, route, status): ``labels()`` costs more than the
        # observation itself. Bounded: methods and statuses are few, routes are templates.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One finished HTTP request; ``route`` is the template (``/devices/{token}``) or ``unmatched``."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.http_requests.labels(method, route, str(status)), self.http_latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def webhook_outcome(self, outcome: str) -> None:
        """One delivery attempt ended: ``delivered`` (2xx), ``retry`` (will try again) or ``failed`` (dead letter).

        For senders other than the Dispatcher: its own counters (``Dispatcher.stats``) are read at scrape time.
        """
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1

    async def snapshot(self) -> Snapshot:
        rows = [d.row for d in self.devices.devices.values()]
        counts, oldest = await self.store.outbox_stats()
        return Snapshot(
            devices=self.devices.status_counts(),
            messages_sent=self._sent.update({r.token: r.messages_sent for r in rows}),
            messages_received=self._received.update({r.token: r.messages_received for r in rows}),
            outbox={s: counts.get(s, 0) for s in OUTBOX_STATUSES},
            oldest_pending_age=max(0.0, self.clock() - oldest) if oldest is not None else 0.0,
            ws_clients=self.hub.client_count,
            reconnects=self.devices.reconnects,
            events_published=self.hub.published,
            webhook_outcomes=self._webhook_outcomes(),
        )

    def _webhook_outcomes(self) -> dict[str, int]:
        out = dict(self._outcomes)
        stats = self.dispatcher.stats
        for outcome, key in (("delivered", "delivered"), ("retry", "retried"), ("failed", "failed")):
            out[outcome] += int(stats.get(key, 0))
        return out

    async def render(self) -> bytes:
        """The Prometheus text exposition of everything, scrape-time values included."""
        snap = await self.snapshot()
        return generate_latest(_WithSnapshot(self.registry, snap, self.node))


class _WithSnapshot(Collector):
    """The Prometheus registry plus one scrape's snapshot, as something ``generate_latest`` can walk."""

    def __init__(self, registry: CollectorRegistry, snap: Snapshot, node: str | None) -> None:
        self.registry = registry
        self.snap = snap
        self.node = node

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from _snapshot_metrics(self.snap, self.node)


def _snapshot_metrics(s: Snapshot, node: str | None = None) -> Iterable[Metric]:
    info = InfoMetricFamily("wa_build", "Gateway version (and, in a cluster, this node's id).")
    info.add_metric([], {"version": __version__, **({"node": node} if node is not None else {})})
    yield info
    devices = GaugeMetricFamily("wa_devices", "Devices by status.", labels=["status"])
    for status, n in sorted(s.devices.items()):
        devices.add_metric([status], n)
    yield devices
    yield CounterMetricFamily("wa_messages_sent", "Text messages sent by all devices.", value=s.messages_sent)
    yield CounterMetricFamily("wa_messages_received", "Messages received by all devices.", value=s.messages_received)
    outbox = GaugeMetricFamily("wa_webhook_outbox", "Webhook deliveries in the outbox by status.", labels=["status"])
    for status, n in s.outbox.items():
        outbox.add_metric([status], n)
    yield outbox
    deliveries = CounterMetricFamily(
        "wa_webhook_deliveries", "Webhook delivery attempts by outcome (delivered, retry, failed).", labels=["outcome"]
    )
    for outcome, n in s.webhook_outcomes.items():
        deliveries.add_metric([outcome], n)
    yield deliveries
    yield GaugeMetricFamily(
        "wa_webhook_oldest_pending_age_seconds",
        "Age of the oldest pending webhook delivery (0 when none is pending).",
        value=s.oldest_pending_age,
    )
    yield GaugeMetricFamily("wa_websocket_clients", "Connected WebSocket clients.", value=s.ws_clients)
    yield CounterMetricFamily("wa_device_reconnects", "Driver reconnect attempts.", value=s.reconnects)
    yield CounterMetricFamily("wa_events_published", "Events published to the hub.", value=s.events_published)
