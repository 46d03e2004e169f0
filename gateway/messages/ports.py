"""What the message store needs of a device, as protocols: the device package uses the message store
(its pump records what arrives), so the message store may not import the device package back (the
import layers in pyproject.toml). :class:`gateway.devices.Device` fits :class:`MessagingDevice`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from gateway.drivers.base import Driver
from gateway.store import Store
from gateway.store.devices import DeviceRow
from gateway.webhooks import WebhookRouter

T = TypeVar("T")


class Recording(Protocol):
    @property
    def enabled(self) -> bool: ...


class DeviceServices(Protocol):
    """What a device's manager lends it: the store, the webhook routing, the dispatcher's wake-up."""

    @property
    def store(self) -> Store: ...

    @property
    def router(self) -> WebhookRouter: ...

    @property
    def recorder(self) -> Recording: ...

    def wake_dispatcher(self) -> None: ...


class MessagingDevice(Protocol):
    """A linked device as the message store acts on it."""

    @property
    def token(self) -> str: ...

    @property
    def row(self) -> DeviceRow: ...

    @property
    def driver(self) -> Driver: ...

    @property
    def m(self) -> DeviceServices: ...

    def publish(self, event: str, data: Any = None, message: str | None = None) -> None: ...

    def publish_lazy(self, event: str, build: Callable[[], Any]) -> None: ...

    def publish_each(self, event: str, items: Sequence[T], build: Callable[[T], Any]) -> None: ...

    def _require_connected(self) -> None: ...
