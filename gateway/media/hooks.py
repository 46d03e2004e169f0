"""The app's start/stop hooks for the media service (``Runtime.services["media"]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.media.service import MediaService

if TYPE_CHECKING:
    from gateway.runtime import Runtime


async def start(rt: Runtime) -> None:
    svc = MediaService(rt.settings, rt.store)
    await svc.start()
    rt.services["media"] = svc
    rt.devices.media = svc  # the device pumps download incoming media through it


async def stop(rt: Runtime) -> None:
    svc: MediaService | None = rt.services.pop("media", None)
    if svc is not None:
        rt.devices.media = None
        await svc.stop()
