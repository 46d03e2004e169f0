"""Contacts as CSV (RFC 4180), safe to open in a spreadsheet, written batch by batch.

A cell that a spreadsheet would read as a formula (starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'`` (OWASP
"CSV injection"); quoting of commas, quotes and newlines is the ``csv``
module's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable

from gateway.store import ContactRow

HEADER = ("phone", "name", "source", "first_seen", "last_seen")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str | None) -> str:
    if not cell:
        return ""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def render_rows(rows: Iterable[Iterable[str | None]]) -> str:
    """CSV text of ``rows`` (each line ends with CRLF)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerows([neutralise(c) for c in row] for row in rows)
    return buf.getvalue()


def contact_cells(c: ContactRow) -> tuple[str | None, ...]:
    return (c.phone, c.name, c.source, c.first_seen, c.last_seen)


async def contacts_csv(batches: AsyncIterator[list[ContactRow]]) -> AsyncIterator[bytes]:
    """The header, then one UTF-8 chunk per batch: memory stays at one batch."""
    yield render_rows([HEADER]).encode()
    async for batch in batches:
        yield render_rows(contact_cells(c) for c in batch).encode()
