"""The webhooks service's lifecycle: start the dispatcher and let the event pumps wake it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.webhooks.dispatcher import Dispatcher

if TYPE_CHECKING:
    from gateway.runtime import Runtime


async def start(rt: Runtime) -> None:
    """Service hook: start the dispatcher and let the event pumps wake it."""
    dispatcher = Dispatcher(rt.settings, rt.store, transport=rt.services.get("webhook_transport"))
    rt.services["dispatcher"] = dispatcher
    rt.devices.wake_dispatcher = dispatcher.wake
    await dispatcher.start()


async def stop(rt: Runtime) -> None:
    """Service hook: finish or hand back in-flight attempts, then close."""
    rt.devices.wake_dispatcher = lambda: None
    dispatcher: Dispatcher | None = rt.services.pop("dispatcher", None)
    if dispatcher is not None:
        await dispatcher.stop()
