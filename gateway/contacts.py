"""The contacts a device has seen, as the API reads them: who may, one page, the CSV export.

Contacts outlive their device (CONTRACT §4): a caller may read a token's contacts while
the device exists and is theirs, or while any of their contacts remain after it is gone.
An account reads only its own rows; the admin reads every row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.api.errors import device_not_found
from gateway.auth import Principal
from gateway.csv_export import contacts_csv
from gateway.devices import DeviceManager
from gateway.store import ContactRow, Store


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[ContactRow]
    total: int


class Contacts:
    def __init__(self, store: Store, devices: DeviceManager) -> None:
        self.store = store
        self.devices = devices

    async def check_visible(self, caller: Principal, token: str) -> None:
        """DEVICE_NOT_FOUND unless the caller sees the device or has contacts of it."""
        device = self.devices.get(token)
        if device is not None and caller.can_see(device.row.owner_id):
            return
        if not await self.store.has_contacts(token, _owner(caller)):
            raise device_not_found(token)

    async def page(self, caller: Principal, token: str, limit: int, offset: int) -> Page:
        """One page in export order (``first_seen``, then phone), with the total count."""
        await self.check_visible(caller, token)
        owner = _owner(caller)
        total = await self.store.count_contacts(token, owner)
        rows = await self.store.list_contacts(token, limit, offset, owner)
        return Page(rows, total)

    async def export(self, caller: Principal, token: str, limit: int | None, offset: int) -> AsyncIterator[bytes]:
        """The CSV file in chunks (``limit=None``: every row), in bounded memory. Checks visibility
        first, so a refusal is an error answer rather than a broken stream."""
        await self.check_visible(caller, token)
        return contacts_csv(self.store.iter_contact_tuples(token, limit, offset, _owner(caller)))


def _owner(caller: Principal) -> int | None:
    return None if caller.is_admin else caller.account_id
